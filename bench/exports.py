"""Export benchmark: appointments as CSV and XLSX at 10,000 and 100,000 rows, rows/s and peak
memory. Flat memory between the two sizes is what streaming from a server-side cursor buys.

    python -m bench.exports [--rows 100000] [--database-url URL]

Without --database-url it builds a throw-away SQLite database; with one (an empty PostgreSQL
database the owner can migrate, e.g. postgresql://postgres@127.0.0.1/cf_bench_exports) it
migrates it and the export runs as that role. It drives the same pipeline the endpoint returns
(ExportService + stream_export) and discards each chunk as a client would receive it; peak
memory is Python's traced allocation peak (tracemalloc) during the export.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert
from tests.factories import make_member

from clinicflow.appointments.models import Appointment
from clinicflow.appointments.repository import AppointmentFilters
from clinicflow.core import migrate
from clinicflow.core.models import new_id, utcnow
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.exports.schemas import ExportFormat
from clinicflow.exports.service import ExportService, stream_export
from clinicflow.main import create_app
from clinicflow.patients.models import Patient

BATCH = 5000
START = datetime(2020, 1, 6, 12, tzinfo=UTC)


async def add_appointments(app: object, member: object, first: int, count: int) -> None:
    """Hourly, non-overlapping appointments numbered first..first+count-1, in bulk."""
    database = app.state.database  # type: ignore[attr-defined]
    async with database.sessionmaker() as session:
        await set_session_tenant(session, member.tenant_id)  # type: ignore[attr-defined]
        async with session.begin():
            patient_id = new_id()
            session.add(Patient(id=patient_id, full_name=f"Bench patient {first}"))
            await session.flush()
            for offset in range(first, first + count, BATCH):
                rows = [
                    {
                        "id": new_id(),
                        "tenant_id": member.tenant_id,  # type: ignore[attr-defined]
                        "patient_id": patient_id,
                        "professional_id": member.user_id,  # type: ignore[attr-defined]
                        "start_at": START + timedelta(hours=n),
                        "end_at": START + timedelta(hours=n, minutes=50),
                        "status": "scheduled",
                        "location": "Room 1",
                        "notes": f"Appointment {n}",
                        "allow_overlap": False,
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    }
                    for n in range(offset, min(offset + BATCH, first + count))
                ]
                await session.execute(insert(Appointment), rows)


async def export(app: object, member: object, fmt: ExportFormat) -> tuple[int, float, int]:
    """(bytes sent, seconds, peak traced bytes)."""
    database = app.state.database  # type: ignore[attr-defined]
    tenant_id = member.tenant_id  # type: ignore[attr-defined]
    async with database.sessionmaker() as session:
        plan = ExportService(session, tenant_id).appointments(AppointmentFilters())
    tracemalloc.start()
    started = time.perf_counter()
    sent = 0
    async for chunk in stream_export(database.sessionmaker, tenant_id, plan, fmt):
        sent += len(chunk)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return sent, elapsed, peak


async def run(total: int, database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url, log_level="WARNING")  # type: ignore[call-arg]
    app = create_app(settings)
    sizes = [total // 10, total]
    print(f"database {database_url.split(':', 1)[0]}")
    print(f"{'format':6} {'rows':>8} {'rows/s':>8} {'MB sent':>8} {'peak MB':>8}")
    async with app.router.lifespan_context(app):
        member = await make_member(app, role="owner")
        held = 0
        for size in sizes:
            await add_appointments(app, member, held, size - held)
            held = size
            for fmt in (ExportFormat.CSV, ExportFormat.XLSX):
                sent, seconds, peak = await export(app, member, fmt)
                print(
                    f"{fmt.value:6} {size:8} {size / seconds:8.0f} {sent / 1e6:8.1f}"
                    f" {peak / 1e6:8.2f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        migrate.upgrade(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
        asyncio.run(run(args.rows, url))


if __name__ == "__main__":
    main()

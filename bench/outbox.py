"""Outbox throughput: queue N e-mails, drain them with 1 and then 2 `clinicflow worker` processes.

    python -m bench.outbox --database-url postgresql://postgres@127.0.0.1/cf_bench_outbox \
        [--messages 10000] [--batch-size 20] [--sink smtp|eml]

The database must exist and be empty (it is migrated, and the outbox emptied between runs).
Workers are real `clinicflow worker` processes. `--sink smtp` (default) delivers over SMTP to an
aiosmtpd server in this process (one SMTP session per message, as in production); `--sink eml`
writes .eml files instead, which leaves mostly the outbox itself: claim, decrypt, settle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete, func, select
from tests.mailtools import running_inbox

from clinicflow.core import migrate
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from clinicflow.notifications.mailer import EmailMessageSpec
from clinicflow.notifications.models import OutboxMessage, OutboxStatus


async def queue(settings: Settings, total: int) -> float:
    """Queue `total` messages (1,000 per transaction); returns messages queued per second."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.database
        async with database.sessionmaker() as session, session.begin():
            await session.execute(delete(OutboxMessage))
        started = time.perf_counter()
        for first in range(0, total, 1000):
            async with database.sessionmaker() as session, session.begin():
                for number in range(first, min(first + 1000, total)):
                    app.state.outbox.queue_email(
                        session,
                        EmailMessageSpec(
                            to=f"patient{number}@example.com",
                            subject=f"bench {number}",
                            text="Hello",
                            html="<p>Hello</p>",
                        ),
                    )
        return total / (time.perf_counter() - started)


async def sent_count(settings: Settings) -> int:
    app = create_app(settings)
    async with app.router.lifespan_context(app), app.state.database.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).where(OutboxMessage.status == OutboxStatus.SENT)
        )
    return int(count or 0)


def drain(settings: Settings, sink: dict[str, str], workers: int, total: int, batch: int) -> float:
    """Start `workers` processes, wait until every message is sent; messages per second."""
    env = {
        **os.environ,
        **sink,
        "DATABASE_URL": settings.database_url,
        "LOG_LEVEL": "WARNING",
        "WORKER_POLL_SECONDS": "0.05",
        "WORKER_BATCH_SIZE": str(batch),
    }
    command = [str(Path(sys.executable).parent / "clinicflow"), "worker"]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, env=env) for _ in range(workers)]  # noqa: S603
    try:
        while asyncio.run(sent_count(settings)) < total:
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--sink", choices=("smtp", "eml"), default="smtp")
    args = parser.parse_args()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=args.database_url, log_level="WARNING"
    )
    migrate.upgrade(settings)
    for inbox in running_inbox():
        with tempfile.TemporaryDirectory() as directory:
            sink = (
                {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(inbox.port), "SMTP_TLS": "none"}
                if args.sink == "smtp"
                else {"SMTP_HOST": "", "MAIL_OUTBOX_DIR": directory}
            )
            for workers in (1, 2):
                inbox.messages.clear()
                queued = asyncio.run(queue(settings, args.messages))
                rate = drain(settings, sink, workers, args.messages, args.batch_size)
                delivered = (
                    len(inbox.messages)
                    if args.sink == "smtp"
                    else len(list(Path(directory).glob("*.eml")))
                )
                print(
                    f"{args.messages} messages, sink {args.sink}: queued {queued:,.0f}/s; "
                    f"drained by {workers} worker(s) at {rate:,.0f} messages/s; "
                    f"{delivered} delivered"
                )
                for path in Path(directory).glob("*.eml"):
                    path.unlink()


if __name__ == "__main__":
    main()

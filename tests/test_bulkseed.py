"""Bulk seeding (`clinicflow seed --tenants ...`): rows land per tenant under RLS, appointments
never overlap, and a seeded owner logs in and sees exactly their practice's patients."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import pairwise

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from clinicflow.bulkseed import SEED_PASSWORD, BulkPlan, RowMaker, seed_bulk
from tests.conftest import PgTestDatabase, make_test_settings
from tests.test_cli import _run


async def _login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    login = await client.post(
        "/api/v1/auth/login", json={"username": email, "password": SEED_PASSWORD}
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_bulk_seed_on_postgres_isolates_tenants_and_never_overlaps(
    client: httpx.AsyncClient,
    db: FastAPI,
    pg_database: PgTestDatabase,
    admin_engine: AsyncEngine,
) -> None:
    settings = make_test_settings(
        database_url=pg_database.app_url, migrations_database_url=pg_database.owner_url
    )
    result = await seed_bulk(settings, BulkPlan(3, 20, 2, professionals=2))
    assert (len(result.practices), result.patients, result.appointments) == (3, 60, 120)

    async with admin_engine.connect() as connection:
        counts = {
            (row.kind, row.tenant_id): row.count
            for row in await connection.execute(
                text(
                    "SELECT 'patients' AS kind, tenant_id, count(*) FROM patients GROUP BY 2 "
                    "UNION ALL SELECT 'appointments', tenant_id, count(*) FROM appointments "
                    "GROUP BY 2 UNION ALL SELECT 'members', tenant_id, count(*) FROM memberships "
                    "GROUP BY 2"
                )
            )
        }
        overlaps = await connection.scalar(
            text(
                "SELECT count(*) FROM appointments a JOIN appointments b ON a.tenant_id = "
                "b.tenant_id AND a.professional_id = b.professional_id AND a.id < b.id AND "
                "tstzrange(a.start_at, a.end_at) && tstzrange(b.start_at, b.end_at)"
            )
        )
        spans = (
            await connection.execute(
                text(
                    "SELECT min(end_at - start_at) AS shortest, max(end_at - start_at) AS longest,"
                    " bool_or(start_at < now()) AS past, bool_or(start_at > now()) AS future "
                    "FROM appointments"
                )
            )
        ).one()
        # Professionals are members of the appointment's own practice, owners (the clinicians).
        strangers = await connection.scalar(
            text(
                "SELECT count(*) FROM appointments a LEFT JOIN memberships m ON m.tenant_id = "
                "a.tenant_id AND m.user_id = a.professional_id AND m.role = 'owner' "
                "WHERE m.id IS NULL"
            )
        )
        patients_by_tenant: dict[uuid.UUID, set[str]] = {}
        for row in await connection.execute(text("SELECT tenant_id, id FROM patients")):
            patients_by_tenant.setdefault(row.tenant_id, set()).add(str(row.id))
    for practice in result.practices:
        assert counts[("patients", practice.tenant_id)] == 20
        assert counts[("appointments", practice.tenant_id)] == 40
        assert counts[("members", practice.tenant_id)] == 3  # two owners, one front desk
    assert overlaps == 0
    assert strangers == 0
    assert spans.shortest.total_seconds() >= 30 * 60
    assert spans.longest.total_seconds() <= 60 * 60
    assert spans.past
    assert spans.future

    for practice in result.practices:
        headers = await _login(client, practice.owner_email)
        listed = await client.get("/api/v1/patients?limit=100", headers=headers)
        assert listed.status_code == 200, listed.text
        seen = {patient["id"] for patient in listed.json()["items"]}
        assert seen == patients_by_tenant[practice.tenant_id]
        someone = listed.json()["items"][-1]
        searched = await client.get(
            "/api/v1/patients", params={"q": someone["full_name"], "limit": 100}, headers=headers
        )
        assert someone["id"] in {patient["id"] for patient in searched.json()["items"]}
        agenda = await client.get(
            "/api/v1/appointments",
            params={"professional_id": str(practice.professional_ids[1]), "limit": 200},
            headers=headers,
        )
        assert agenda.status_code == 200
        assert len(agenda.json()["items"]) == 20  # 40 appointments over two professionals
    front_desk = await _login(client, result.practices[0].assistant_email)
    assert (await client.get("/api/v1/patients", headers=front_desk)).status_code == 200


async def test_seed_command_bulk_options_print_a_working_login(
    client: httpx.AsyncClient,
    db: FastAPI,
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MIGRATIONS_DATABASE_URL", pg_database.owner_url)
    code, output = await _run(
        pg_database, monkeypatch,
        "seed", "--tenants", "2", "--patients-per-tenant", "5", "--appointments-per-patient", "1",
    )  # fmt: skip
    assert code == 0, output
    assert "Seeded 2 practices, 10 patients, 10 appointments" in output
    owner = next(word for word in output.split() if word.startswith("owner@"))
    headers = await _login(client, owner.rstrip(","))
    listed = await client.get("/api/v1/patients", headers=headers)
    assert len(listed.json()["items"]) == 5


async def test_seed_command_refuses_appointments_without_patients(
    pg_database: PgTestDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = await _run(
        pg_database, monkeypatch, "seed", "--tenants", "1", "--appointments-per-patient", "2"
    )
    assert code == 2
    assert "appointments need patients" in output


@pytest.mark.parametrize("hour", [0, 9, 17, 23])
@pytest.mark.parametrize("count", [1, 2, 20, 400])
def test_seeded_agendas_are_half_past_half_future_whatever_the_hour(hour: int, count: int) -> None:
    """Late on a weekday all of today's slots are past: a split by days alone then left a small
    agenda with no future appointment (a Wednesday at 17:00 UTC did)."""
    now = datetime(2026, 12, 2, hour, 30, tzinfo=UTC)  # a Wednesday
    slots = list(RowMaker(BulkPlan(1, 1, 1), "hash", now)._slots(count))
    past = [start for start, end in slots if end <= now]
    future = [start for start, _ in slots if start > now]
    assert (len(past), len(future)) == (count // 2, count - count // 2)
    assert all(start.weekday() < 5 for start, _ in slots)
    spans = sorted(slots)
    assert all(before[1] <= after[0] for before, after in pairwise(spans))

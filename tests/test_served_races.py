"""Races between server processes, as production runs them: `clinicflow serve --workers 2` and
separate HTTP clients, on PostgreSQL (the app role, RLS on) and on the embedded SQLite default."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import Row, func, select, update

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent
from clinicflow.core import migrate
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.main import create_app
from clinicflow.patients.models import Patient
from clinicflow.tenants.models import Plan, Tenant
from clinicflow.users.models import User
from clinicflow.webhooks.service import MAX_WEBHOOKS
from tests.conftest import make_test_settings
from tests.factories import Member, make_member
from tests.served import Served, serve

CLIENTS = 12
ADMIN_EMAIL = "first-admin@example.com"
ADMIN_PASSWORD = "k9#vQ2pX-first-admin"


async def _fire(
    served: Served, member: Member, method: str, path: str, bodies: list[dict[str, object]]
) -> list[httpx.Response]:
    """One request per body, all at once, each from its own client (its own connection)."""

    async def one(body: dict[str, object]) -> httpx.Response:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
            return await client.request(method, path, json=body, headers=member.headers)

    return list(await asyncio.gather(*(one(body) for body in bodies)))


async def _patient(served: Served, member: Member) -> str:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
        created = await client.post(
            "/api/v1/patients", json={"full_name": "Race Patient"}, headers=member.headers
        )
    assert created.status_code == 201, created.text
    patient_id: str = created.json()["id"]
    return patient_id


async def _book_one_slot_many_times(served: Served, owner: Member, rounds: int) -> None:
    patient = await _patient(served, owner)
    for round_number in range(rounds):
        start = f"2031-03-{3 + round_number:02d}T13:00:00Z"
        bodies: list[dict[str, object]] = [
            {"patient_id": patient, "start": start, "duration_minutes": 50}
        ] * CLIENTS
        answers = await _fire(served, owner, "POST", "/api/v1/appointments", bodies)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] + [409] * (CLIENTS - 1), [a.text for a in answers]
        [winner] = [answer.json()["id"] for answer in answers if answer.status_code == 201]
        for answer in answers:
            if answer.status_code == 409:
                assert answer.json()["conflicting_appointment_id"] == winner


async def test_postgres_workers_start_with_first_admin_and_book_each_slot_once(
    db: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    owner = await make_member(db, role="owner")
    admin = {"FIRST_ADMIN_EMAIL": ADMIN_EMAIL, "FIRST_ADMIN_PASSWORD": ADMIN_PASSWORD}
    for start in range(3):  # every start races its workers to create the admin
        with serve(settings.database_url, tmp_path / f"start-{start}", **admin) as served:
            if start == 2:
                await _book_one_slot_many_times(served, owner, rounds=5)
            log = served.log()
    assert "Traceback" not in log
    async with db.state.database.sessionmaker() as session:
        admins = (
            await session.execute(select(func.count()).where(User.email == ADMIN_EMAIL))
        ).scalar_one()
    assert admins == 1


async def _links(
    db: FastAPI, model: type[AuditEvent] | type[PlatformAuditEvent], tenant: uuid.UUID | None
) -> list[Row[tuple[int, str, str]]]:
    """A chain's links in order: the practice's (tenant) or the platform's (None)."""
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, tenant)
        statement = select(model.seq, model.prev_hash, model.hash).order_by(model.seq)
        return list(await session.execute(statement))


def assert_unbroken(links: list[Row[tuple[int, str, str]]]) -> None:
    assert [link.seq for link in links] == list(range(1, len(links) + 1))
    for previous, link in itertools.pairwise(links):
        assert link.prev_hash == previous.hash, f"event {link.seq}"


async def _guess_passwords_at_once(served: Served, member: Member, app: FastAPI) -> None:
    """Wrong passwords for one account, one fewer than the lockout threshold, at once: each is
    checked outside its request's transaction, and each is counted on the account row read
    again afterwards under its lock (PostgreSQL) or the write lock (SQLite)."""
    guesses: list[dict[str, object]] = [
        {"username": member.email, "password": f"wrong-guess-{n}"} for n in range(4)
    ]
    wrong = await _fire(served, member, "POST", "/api/v1/auth/login", guesses)
    assert [answer.status_code for answer in wrong] == [401] * 4
    async with app.state.database.sessionmaker() as session:
        user = await session.get(User, member.user_id)
        assert user is not None
        assert user.failed_login_count == 4


async def test_postgres_workers_append_concurrent_audit_events_in_one_unbroken_chain(
    db: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    """Each append locks its chain and reads its last link in one statement
    (audit_chain_head): appends racing from two processes still queue, none is lost; so are
    wrong passwords racing for one account's count."""
    owner = await make_member(db, role="owner")
    with serve(settings.database_url, tmp_path) as served:
        bodies: list[dict[str, object]] = [{"full_name": f"P{n}"} for n in range(CLIENTS)]
        created = await _fire(served, owner, "POST", "/api/v1/patients", bodies)
        strangers: list[dict[str, object]] = [
            {"username": f"nobody-{n}@example.com", "password": "not-the-password"}
            for n in range(CLIENTS)
        ]
        refused = await _fire(served, owner, "POST", "/api/v1/auth/login", strangers)
        await _guess_passwords_at_once(served, owner, db)
    assert [answer.status_code for answer in created] == [201] * CLIENTS
    assert [answer.status_code for answer in refused] == [401] * CLIENTS
    practice = await _links(db, AuditEvent, owner.tenant_id)
    assert len(practice) >= CLIENTS  # a patient.created each, after the member's own events
    assert_unbroken(practice)
    platform = await _links(db, PlatformAuditEvent, None)
    assert len(platform) >= CLIENTS
    assert_unbroken(platform)


async def test_postgres_parallel_patient_creates_never_exceed_the_plan(
    db: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    owner = await make_member(db, role="owner")
    async with db.state.database.sessionmaker() as session, session.begin():
        plan = Plan(name=f"Three {uuid.uuid4().hex[:6]}", max_patients=3)
        session.add(plan)
        await session.flush()
        await session.execute(
            update(Tenant).where(Tenant.id == owner.tenant_id).values(plan_id=plan.id)
        )
    with serve(settings.database_url, tmp_path) as served:
        bodies: list[dict[str, object]] = [{"full_name": f"P{n}"} for n in range(10)]
        answers = await _fire(served, owner, "POST", "/api/v1/patients", bodies)
    assert sorted(answer.status_code for answer in answers) == [201] * 3 + [402] * 7
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        stored = (await session.execute(select(func.count()).select_from(Patient))).scalar_one()
    assert stored == 3


async def _rotate_one_key_many_times(served: Served, owner: Member) -> None:
    """A key is rotated once: workers asked at once issue one new secret, never two live ones
    (the row lock; SQLite's write lock), and the others answer 409."""
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
        key = await client.post(
            "/api/v1/api-keys", json={"name": "bot", "scopes": ["patients:read"]},
            headers=owner.headers,
        )  # fmt: skip
    assert key.status_code == 201, key.text
    path = f"/api/v1/api-keys/{key.json()['id']}/rotate"
    answers = await _fire(served, owner, "POST", path, [{"grace_seconds": 3600}] * CLIENTS)
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
        listed = await client.get("/api/v1/api-keys", headers=owner.headers)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [409] * (CLIENTS - 1), [a.text for a in answers]
    assert len(listed.json()["items"]) == 2  # the old one in its grace period, and one successor


async def _create_webhooks_past_the_cap(served: Served, owner: Member) -> None:
    bodies: list[dict[str, object]] = [
        {"url": f"https://example.com/hook/{n}", "events": ["patient.created"]}
        for n in range(MAX_WEBHOOKS + 5)
    ]
    answers = await _fire(served, owner, "POST", "/api/v1/webhooks", bodies)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * MAX_WEBHOOKS + [409] * 5, [
        a.text for a in answers if a.status_code >= 500
    ]


async def test_postgres_concurrent_key_rotations_and_webhook_creations_keep_their_limits(
    db: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    with serve(settings.database_url, tmp_path) as served:
        await _rotate_one_key_many_times(served, await make_member(db, role="owner"))
        await _create_webhooks_past_the_cap(served, await make_member(db, role="owner"))
        assert "Traceback" not in served.log()


async def test_sqlite_workers_book_each_slot_once_and_keep_the_limits(tmp_path: Path) -> None:
    """The embedded default has no exclusion constraint or row locks: the write lock taken up
    front holds the rules."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'clinicflow.db'}"
    local = make_test_settings(database_url=database_url)
    await asyncio.to_thread(migrate.upgrade, local)  # alembic runs its own event loop
    app = create_app(local)
    async with app.router.lifespan_context(app):
        owner = await make_member(app, role="owner")
        other = await make_member(app, role="owner")
        with serve(database_url, tmp_path / "served") as served:
            await _book_one_slot_many_times(served, owner, rounds=3)
            await _rotate_one_key_many_times(served, owner)
            await _create_webhooks_past_the_cap(served, other)
            await _guess_passwords_at_once(served, other, app)
            assert "Traceback" not in served.log()

"""The audit trail: who reads which chain, pagination, and tamper detection."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import TableClause, column, delete, insert, select, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from typer.testing import CliRunner

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent
from clinicflow.audit.service import GENESIS_HASH, AuditRow, event_mac, legacy_hash
from clinicflow.cli import app as cli
from clinicflow.core import migrate
from clinicflow.core.settings import Settings, get_settings
from clinicflow.main import create_app
from tests import documented_statuses
from tests.conftest import (
    PgTestDatabase,
    create_pg_database,
    drop_pg_database,
    make_test_settings,
)
from tests.factories import Member, make_member, make_platform_admin

EVENTS = "/api/v1/audit-events"


async def _some_history(client: httpx.AsyncClient, db: FastAPI) -> tuple[Member, Member]:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    for role in ("viewer", "assistant", "viewer"):
        response = await client.patch(
            f"/api/v1/tenant/members/{assistant.user_id}",
            json={"role": role},
            headers=owner.headers,
        )
        assert response.status_code == 200
    await client.post(
        "/api/v1/auth/login", json={"username": "ghost@example.com", "password": "x" * 9}
    )
    return owner, assistant


async def test_owner_reads_the_practice_trail_newest_first_with_pages(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, _ = await _some_history(client, db)
    first = await client.get(f"{EVENTS}?limit=2&action=member.role_changed", headers=owner.headers)
    assert first.status_code == 200
    items = first.json()["items"]
    assert [item["details"]["to"] for item in items] == ["viewer", "assistant"]
    rest = await client.get(
        f"{EVENTS}?limit=2&action=member.role_changed&cursor={first.json()['next_cursor']}",
        headers=owner.headers,
    )
    assert [item["details"]["to"] for item in rest.json()["items"]] == ["viewer"]
    assert rest.json()["next_cursor"] is None
    everything = await client.get(EVENTS, headers=owner.headers)
    assert "auth.login_failed" not in {item["action"] for item in everything.json()["items"]}


async def test_platform_admin_reads_platform_events_only(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    await _some_history(client, db)
    admin = await make_platform_admin(db)
    response = await client.get(EVENTS, headers=admin.headers)
    actions = {item["action"] for item in response.json()["items"]}
    assert "auth.login_failed" in actions
    assert "member.role_changed" not in actions


async def _verify(
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
    heads: Path | None = None,
    key: str | None = None,
) -> tuple[int, str]:
    """The real command, as the application role, in a thread (it runs its own event loop)."""
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    monkeypatch.setenv("AUDIT_HEAD_FILE", str(heads) if heads else "")
    if key is not None:
        monkeypatch.setenv("AUDIT_HMAC_KEY", key)
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "verify"])
    finally:
        get_settings.cache_clear()
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


async def test_audit_verify_names_the_first_tampered_event(
    client: httpx.AsyncClient,
    db: FastAPI,
    admin_engine: AsyncEngine,
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner, _ = await _some_history(client, db)
    code, output = await _verify(pg_database, monkeypatch)
    assert code == 0, output
    assert "intact" in output
    async with admin_engine.begin() as connection:  # a superuser rewriting history
        await connection.execute(
            text(
                'UPDATE audit_events SET details = \'{"from": "owner", "to": "owner"}\' '
                "WHERE tenant_id = :t AND seq = 2"
            ),
            {"t": owner.tenant_id},
        )
    code, output = await _verify(pg_database, monkeypatch)
    assert code == 1
    assert str(owner.tenant_id) in output
    assert "event 2" in output
    assert "forged or rewritten" in output


async def test_a_forged_event_appended_by_the_app_role_breaks_verify(
    client: httpx.AsyncClient,
    db: FastAPI,
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app role holds the database credentials but not the audit key: an event it makes
    up, linked correctly and hashed with the old published formula, is caught."""
    owner, _ = await _some_history(client, db)
    app_role = create_async_engine(pg_database.app_url)
    try:
        async with app_role.begin() as connection:
            await connection.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(owner.tenant_id)}
            )
            last = (
                await connection.execute(
                    text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                )
            ).one()
            forged = AuditEvent(
                id=uuid.uuid4(), tenant_id=owner.tenant_id, seq=last.seq + 1,
                prev_hash=last.hash, occurred_at=datetime.now(UTC),
                action="member.role_changed", subject_type="user",
                subject_id=str(owner.user_id), details={"from": "viewer", "to": "owner"},
                mac_version=2, actor_user_id=None, actor_api_key_id=None, ip=None,
                user_agent=None, request_id=None,
            )  # fmt: skip
            forged.hash = legacy_hash(forged, owner.tenant_id)  # any formula without the key
            await connection.execute(
                text(
                    "SELECT audit_append_tenant(:id, :tenant, :seq, :prev, :at, :action, NULL, "
                    "NULL, 'user', :subject, NULL, NULL, NULL, CAST(:details AS jsonb), :hash)"
                ),
                {"id": forged.id, "tenant": owner.tenant_id, "seq": forged.seq,
                 "prev": forged.prev_hash, "at": forged.occurred_at, "action": forged.action,
                 "subject": forged.subject_id, "details": json.dumps(forged.details),
                 "hash": forged.hash},
            )  # fmt: skip
    finally:
        await app_role.dispose()
    code, output = await _verify(pg_database, monkeypatch)
    assert code == 1
    assert f"event {forged.seq}" in output
    assert "forged" in output


async def test_the_app_role_cannot_insert_into_the_audit_tables_or_break_the_order(
    db: FastAPI, pg_database: PgTestDatabase
) -> None:
    owner = await make_member(db, role="owner")
    app_role = create_async_engine(pg_database.app_url)
    try:
        for table in ("audit_events", "platform_audit_events"):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with app_role.begin() as connection:
                    await connection.execute(
                        text(
                            f"INSERT INTO {table} (id, seq, occurred_at, action, details, "
                            "prev_hash, hash, mac_version) VALUES (gen_random_uuid(), 999, "
                            "now(), 'forged', '{}', 'x', 'y', 2)"
                        )
                    )
        with pytest.raises(DBAPIError, match="does not follow"):
            await _append_out_of_order(app_role, owner.tenant_id)
    finally:
        await app_role.dispose()


async def _append_out_of_order(app_role: AsyncEngine, tenant_id: object) -> None:
    async with app_role.begin() as connection:
        await connection.execute(
            text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)}
        )
        await connection.execute(
            text(
                "SELECT audit_append_tenant(gen_random_uuid(), :t, 500, 'x', now(), "
                "'forged', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{}', 'y')"
            ),
            {"t": tenant_id},
        )


async def test_deleting_the_newest_events_is_caught_by_the_exported_heads(
    db: FastAPI,
    settings: Settings,
    admin_engine: AsyncEngine,
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    heads = tmp_path / "audit-heads.jsonl"
    app = create_app(settings.model_copy(update={"audit_head_file": heads}))
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=documented_statuses.recording(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for role in ("viewer", "assistant", "viewer", "assistant"):
                changed = await http.patch(
                    f"/api/v1/tenant/members/{assistant.user_id}", json={"role": role},
                    headers=owner.headers,
                )  # fmt: skip
                assert changed.status_code == 200
    assert str(owner.tenant_id) in heads.read_text()  # exported after each commit
    code, output = await _verify(pg_database, monkeypatch, heads)
    assert code == 0, output
    async with admin_engine.begin() as connection:  # the owner role dropping the tail
        await connection.execute(
            text(
                "DELETE FROM audit_events WHERE tenant_id = :t AND seq > "
                "(SELECT max(seq) - 3 FROM audit_events WHERE tenant_id = :t)"
            ),
            {"t": owner.tenant_id},
        )
    code, output = await _verify(pg_database, monkeypatch, heads)
    assert code == 1
    assert "tail was deleted" in output.replace("\n", " ")
    heads.write_text(heads.read_text().replace('"seq":', '"seq": 1', 1))  # a forged head line
    code, output = await _verify(pg_database, monkeypatch, heads)
    assert code == 1


async def test_a_refused_login_that_keeps_its_audit_event_exports_the_chain_head(
    db: FastAPI, settings: Settings, admin_engine: AsyncEngine, tmp_path: Path
) -> None:
    """A wrong password answers 401 yet commits its failed-login event: the chain head that
    commit made is exported too, or deleting the newest failed logins would go unnoticed."""
    heads = tmp_path / "audit-heads.jsonl"
    app = create_app(settings.model_copy(update={"audit_head_file": heads}))
    owner = await make_member(db, role="owner")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=documented_statuses.recording(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            refused = await http.post(
                "/api/v1/auth/login", json={"username": owner.email, "password": "not-it-at-all"}
            )
    assert refused.status_code == 401
    async with admin_engine.connect() as connection:
        newest = (
            await connection.execute(
                text(
                    "SELECT tenant_id, seq FROM audit_events WHERE action = 'auth.login_failed' "
                    "UNION ALL SELECT NULL, seq FROM platform_audit_events "
                    "WHERE action = 'auth.login_failed'"
                )
            )
        ).one()
    exported = [json.loads(line) for line in heads.read_text().splitlines()]
    chain = str(newest.tenant_id) if newest.tenant_id else "platform"
    assert {(head["chain"], head["seq"]) for head in exported} >= {(chain, newest.seq)}


async def _rewrite_as_legacy(connection: AsyncConnection, tenant_id: uuid.UUID, drop: int) -> None:
    """What a superuser can do without the audit key: drop event `drop` from the practice's
    chain, renumber the rest and relink it all as legacy (plain SHA-256, mac_version 1)."""
    table = AuditEvent.__table__
    rows = (
        await connection.execute(
            select(table).where(table.c.tenant_id == tenant_id).order_by(table.c.seq)
        )
    ).all()
    await connection.execute(delete(table).where(table.c.tenant_id == tenant_id))
    previous = GENESIS_HASH
    for seq, row in enumerate((row for row in rows if row.seq != drop), start=1):
        event = AuditEvent(**{**row._asdict(), "seq": seq, "prev_hash": previous, "mac_version": 1})
        event.hash = previous = legacy_hash(event, tenant_id)
        values = {column.name: getattr(event, column.name) for column in table.columns}
        await connection.execute(insert(table).values(values))


async def test_a_chain_rewritten_as_legacy_events_is_caught(
    client: httpx.AsyncClient,
    db: FastAPI,
    admin_engine: AsyncEngine,
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This database never held legacy events (it was made after the HMAC chain began): an
    unkeyed event anywhere in it is a forgery, however well it links."""
    owner, _ = await _some_history(client, db)
    async with admin_engine.begin() as connection:  # a superuser, no audit key
        await _rewrite_as_legacy(connection, owner.tenant_id, drop=2)
    code, output = await _verify(pg_database, monkeypatch)
    assert code == 1, output
    assert str(owner.tenant_id) in output
    assert "at event 1:" in output.replace("\n", " ")
    assert "legacy" in output


LEGACY_KEY = "legacy-test-audit-key-" + "k" * 24


def _pre_0020_chain(
    model: type[AuditRow], tenant_id: uuid.UUID | None, count: int
) -> list[AuditRow]:
    """Events as ClinicFlow wrote them before migration 0020: linked by plain SHA-256."""
    events: list[AuditRow] = []
    previous = GENESIS_HASH
    for seq in range(1, count + 1):
        event = model(
            id=uuid.uuid4(), seq=seq, prev_hash=previous, occurred_at=datetime.now(UTC),
            action="auth.login", actor_user_id=None, actor_api_key_id=None, subject_type=None,
            subject_id=None, ip="198.51.100.7", user_agent=None, request_id=None,
            details={"n": seq},
        )  # fmt: skip
        if isinstance(event, AuditEvent):
            event.tenant_id = tenant_id
        event.hash = previous = legacy_hash(event, tenant_id)
        events.append(event)
    return events


def _rows(events: list[AuditRow]) -> list[dict[str, object]]:
    """Column values, without mac_version (the table has none before 0020)."""
    names = [column.name for column in events[0].__table__.columns if column.name != "mac_version"]
    return [{name: getattr(event, name) for name in names} for event in events]


def _pre_0020_table(model: type[AuditRow]) -> TableClause:
    columns = [column(c.name, c.type) for c in model.__table__.columns if c.name != "mac_version"]
    return table(model.__tablename__, *columns)


async def _write_pre_0020_trail(url: str, tenant_id: uuid.UUID) -> None:
    """A practice with three legacy events and a platform chain with two, as the owner role
    (inside the practice: FORCE RLS binds the owner too)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)}
            )
            await connection.execute(
                text(
                    "INSERT INTO tenants (id, name, read_only, timezone, settings) "
                    "VALUES (:t, 'Old practice', false, 'UTC', '{}')"
                ),
                {"t": tenant_id},
            )
            await connection.execute(
                insert(_pre_0020_table(AuditEvent)),
                _rows(_pre_0020_chain(AuditEvent, tenant_id, 3)),
            )
            await connection.execute(
                insert(_pre_0020_table(PlatformAuditEvent)),
                _rows(_pre_0020_chain(PlatformAuditEvent, None, 2)),
            )
    finally:
        await engine.dispose()


async def _append_keyed(url: str, tenant_id: uuid.UUID, count: int) -> None:
    """Keyed events after the legacy ones, as the application appends them (with the key)."""
    key = LEGACY_KEY.encode()
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)}
            )
            last = (
                await connection.execute(
                    text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
                )
            ).one()
            previous, seq = last.hash, last.seq
            for _ in range(count):
                seq += 1
                event = AuditEvent(
                    id=uuid.uuid4(), tenant_id=tenant_id, seq=seq, prev_hash=previous,
                    occurred_at=datetime.now(UTC), action="member.role_changed",
                    actor_user_id=None, actor_api_key_id=None, subject_type=None,
                    subject_id=None, ip=None, user_agent=None, request_id=None,
                    details={"to": "viewer"}, mac_version=2,
                )  # fmt: skip
                event.hash = previous = event_mac(key, event, tenant_id)
                values = {c.name: getattr(event, c.name) for c in AuditEvent.__table__.columns}
                await connection.execute(insert(AuditEvent.__table__).values(values))
    finally:
        await engine.dispose()


def test_legacy_events_recorded_at_migration_verify_and_nothing_beyond_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database with events from before the HMAC chain: 0029 signs where each chain's legacy
    events end, so they still verify, while a keyed event rewritten as legacy, a moved
    boundary and a deleted legacy tail are all caught."""
    database = create_pg_database("legacy")
    tenant_id = uuid.uuid4()
    settings = make_test_settings(
        database_url=database.app_url, migrations_database_url=database.owner_url,
        app_db_role=database.app_role, app_db_password=database.password,
        audit_hmac_key=LEGACY_KEY,
    )  # fmt: skip
    try:
        migrate.upgrade(settings, "0019")
        asyncio.run(_write_pre_0020_trail(database.owner_url, tenant_id))
        migrate.upgrade(settings)
        asyncio.run(_append_keyed(database.owner_url, tenant_id, 2))
        asyncio.run(_legacy_scenarios(database, tenant_id, monkeypatch))
    finally:
        drop_pg_database(database)


async def _legacy_scenarios(
    database: PgTestDatabase, tenant_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = await _verify(database, monkeypatch, key=LEGACY_KEY)
    assert code == 0, output
    assert "7 events in 2 chains: intact" in output
    code, output = await _verify(database, monkeypatch, key="another-key-" + "x" * 30)
    assert code == 1  # the records are the key's: another key cannot vouch for them
    assert "tampered" in output

    superuser = create_async_engine(database.admin_url)
    app_role = create_async_engine(database.app_url)
    try:
        with pytest.raises(DBAPIError, match="permission denied"):
            async with app_role.begin() as connection:
                await connection.execute(text("UPDATE audit_legacy_extents SET last_seq = 5"))

        extent = "UPDATE audit_legacy_extents SET last_seq = :seq WHERE chain = :chain"
        async with superuser.begin() as connection:  # moving the boundary needs the key
            await connection.execute(text(extent), {"seq": 5, "chain": str(tenant_id)})
        code, output = await _verify(database, monkeypatch, key=LEGACY_KEY)
        assert code == 1
        assert f"chain {tenant_id} at event 5:" in output.replace("\n", " ")
        assert "tampered" in output
        async with superuser.begin() as connection:
            await connection.execute(text(extent), {"seq": 3, "chain": str(tenant_id)})

        async with superuser.begin() as connection:  # the newest keyed event dropped
            await _rewrite_as_legacy(connection, tenant_id, drop=5)
        code, output = await _verify(database, monkeypatch, key=LEGACY_KEY)
        assert code == 1
        assert f"chain {tenant_id} at event 4:" in output.replace("\n", " ")
        assert "legacy events ended at 3" in output.replace("\n", " ")

        async with superuser.begin() as connection:  # a legacy-only chain loses its tail
            await connection.execute(text("DELETE FROM platform_audit_events WHERE seq = 2"))
        code, output = await _verify(database, monkeypatch, key=LEGACY_KEY)
        assert code == 1
        assert "chain platform at event 2:" in output.replace("\n", " ")
        assert "deleted" in output
    finally:
        await superuser.dispose()
        await app_role.dispose()

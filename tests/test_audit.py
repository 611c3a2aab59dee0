"""The audit trail: who reads which chain, pagination, and tamper detection."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from clinicflow.cli import app as cli
from clinicflow.core.settings import get_settings
from tests.conftest import PgTestDatabase
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


async def _verify(pg_database: PgTestDatabase, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """The real command, as the application role, in a thread (it runs its own event loop)."""
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
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
    assert "does not match its hash" in output

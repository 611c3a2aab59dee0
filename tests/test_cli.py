"""The command line and start-up bootstrap: create-admin, seed (demo logins work), FIRST_ADMIN_*."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from clinicflow.bootstrap import DEMO_PASSWORD
from clinicflow.cli import app as cli
from clinicflow.core.settings import Settings, get_settings
from clinicflow.main import create_app
from tests import documented_statuses
from tests.conftest import PgTestDatabase


async def _run(
    pg_database: PgTestDatabase, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str]:
    """The real command against the test database, in a thread (it runs its own event loop)."""
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "1024")
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "1")
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


async def test_seed_creates_demo_practices_whose_owner_can_log_in(
    client: httpx.AsyncClient,
    db: FastAPI,
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, output = await _run(pg_database, monkeypatch, "seed")
    assert code == 0, output
    assert "ana@aurora.example" in output
    again, _ = await _run(pg_database, monkeypatch, "seed")  # idempotent
    assert again == 0
    login = await client.post(
        "/api/v1/auth/login", json={"username": "ana@aurora.example", "password": DEMO_PASSWORD}
    )
    assert login.status_code == 200
    owner = {"Authorization": f"Bearer {login.json()['access_token']}"}
    members = await client.get("/api/v1/tenant/members", headers=owner)
    assert {m["role"] for m in members.json()["items"]} == {"owner", "assistant", "viewer"}
    # A living practice to explore: patients with custom fields, an agenda across statuses,
    # records for the owner and finance entries.
    patients = (await client.get("/api/v1/patients", headers=owner)).json()["items"]
    assert len(patients) == 6
    assert all(patient["custom_fields"]["insurance"] for patient in patients)
    agenda = (await client.get("/api/v1/appointments?limit=200", headers=owner)).json()["items"]
    assert {a["status"] for a in agenda} == {
        "scheduled", "confirmed", "completed", "no_show", "cancelled",
    }  # fmt: skip
    [maria] = [patient["id"] for patient in patients if patient["full_name"].startswith("Maria")]
    records = await client.get(f"/api/v1/patients/{maria}/records", headers=owner)
    assert [record["kind"] for record in records.json()["items"]] == ["intake", "progress"]
    finance = (await client.get("/api/v1/financial-entries", headers=owner)).json()["items"]
    assert {entry["kind"] for entry in finance} == {"income", "expense"}


async def test_create_admin_with_flags(
    client: httpx.AsyncClient,
    db: FastAPI,
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ("create-admin", "--email", "ops@example.com", "--full-name", "Ops", "--password")
    code, output = await _run(pg_database, monkeypatch, *args, "k9#vQ2pX-ops-admin")
    assert code == 0, output
    weak, weak_output = await _run(
        pg_database, monkeypatch, "create-admin", "--email", "o2@example.com",
        "--full-name", "Ops", "--password", "password1",
    )  # fmt: skip
    assert weak == 1
    assert "weak" in weak_output.lower() or "common" in weak_output.lower()
    # What POST /users refuses, the command line refuses too (nothing is created).
    for email, name in (("not-an-email", "Ops"), ("o3@example.com", "Ops\x01Hidden")):
        bad, bad_output = await _run(
            pg_database, monkeypatch, "create-admin", "--email", email,
            "--full-name", name, "--password", "k9#vQ2pX-ops-admin",
        )  # fmt: skip
        assert bad == 1, bad_output
        assert "created" not in bad_output
    admin_login = await client.post(
        "/api/v1/auth/login", json={"username": "ops@example.com", "password": "k9#vQ2pX-ops-admin"}
    )
    admin = {"Authorization": f"Bearer {admin_login.json()['access_token']}"}
    admins = await client.get("/api/v1/users", headers=admin)
    assert "o3@example.com" not in [user["email"] for user in admins.json()["items"]]
    login = await client.post(
        "/api/v1/auth/login", json={"username": "ops@example.com", "password": "k9#vQ2pX-ops-admin"}
    )
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["role"] == "platform_admin"


async def test_what_the_command_line_audits_has_its_head_exported(
    db: FastAPI,
    pg_database: PgTestDatabase,
    monkeypatch: pytest.MonkeyPatch,
    admin_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    """create-admin appends user.created to the platform chain outside any request: the new
    head is exported as a request's would be, so `audit verify` notices if it is deleted."""
    heads = tmp_path / "audit-heads.jsonl"
    monkeypatch.setenv("AUDIT_HEAD_FILE", str(heads))
    code, output = await _run(
        pg_database, monkeypatch, "create-admin", "--email", "heads@example.com",
        "--full-name", "Ops", "--password", "k9#vQ2pX-ops-admin",
    )  # fmt: skip
    assert code == 0, output
    async with admin_engine.connect() as connection:
        newest = (
            await connection.execute(text("SELECT max(seq) FROM platform_audit_events"))
        ).scalar_one()
    exported = [json.loads(line) for line in heads.read_text().splitlines()]
    assert [(head["chain"], head["seq"]) for head in exported] == [("platform", newest)]


async def test_first_admin_is_created_at_start_up_when_missing(
    db: FastAPI, settings: Settings
) -> None:
    configured = settings.model_copy(
        update={
            "first_admin_email": "first@example.com",
            "first_admin_password": SecretStr("k9#vQ2pX-first-admin"),
        }
    )
    for _ in range(2):  # the second start-up finds it and leaves it alone
        app = create_app(configured)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=documented_statuses.recording(app))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                login = await client.post(
                    "/api/v1/auth/login",
                    json={"username": "first@example.com", "password": "k9#vQ2pX-first-admin"},
                )
    assert login.status_code == 200

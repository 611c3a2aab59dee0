"""Medical records: owner only, encrypted at rest, versioned, audited; keys rotate."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from clinicflow.audit.models import AuditEvent
from clinicflow.cli import app as cli
from clinicflow.core.crypto import EncryptionConfigError, KeyRing, generate_key_entry
from clinicflow.core.settings import get_settings
from clinicflow.core.tenancy import set_session_tenant
from tests.conftest import PgTestDatabase
from tests.factories import Member, make_member, make_platform_admin

SECRET_PHRASE = "patient disclosed a fear of elevators"


async def patient_of(client: httpx.AsyncClient, owner: Member) -> str:
    response = await client.post(
        "/api/v1/patients", json={"full_name": "Rita"}, headers=owner.headers
    )
    return str(response.json()["id"])


async def write(client: httpx.AsyncClient, owner: Member, patient: str, content: str) -> dict:
    response = await client.post(
        f"/api/v1/patients/{patient}/records", json={"content": content}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def audit_actions(db: FastAPI, tenant_id: uuid.UUID | None) -> list[str]:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, tenant_id)
        return list(
            (await session.execute(select(AuditEvent.action).order_by(AuditEvent.seq))).scalars()
        )


async def test_owner_writes_reads_and_amends_keeping_every_version(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    record = await write(client, owner, patient, SECRET_PHRASE)
    assert (record["version"], record["kind"]) == (1, "note")
    amended = await client.patch(
        f"/api/v1/records/{record['id']}", json={"content": "Amended: fear is improving"},
        headers=owner.headers,
    )  # fmt: skip
    assert amended.json()["version"] == 2
    current = await client.get(f"/api/v1/records/{record['id']}", headers=owner.headers)
    assert current.json()["content"] == "Amended: fear is improving"
    versions = await client.get(f"/api/v1/records/{record['id']}/versions", headers=owner.headers)
    assert [v["content"] for v in versions.json()["versions"]] == [
        SECRET_PHRASE,
        "Amended: fear is improving",
    ]
    listed = await client.get(f"/api/v1/patients/{patient}/records", headers=owner.headers)
    assert "content" not in listed.json()["items"][0]
    exported = await client.get(f"/api/v1/patients/{patient}/records/export", headers=owner.headers)
    assert exported.json()["records"][0]["versions"][0]["content"] == SECRET_PHRASE
    actions = await audit_actions(db, owner.tenant_id)
    for action in ("record.created", "record.amended", "record.read", "record.exported"):
        assert action in actions


async def test_nobody_but_the_owner_reaches_a_record(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    record = await write(client, owner, patient, SECRET_PHRASE)
    others = [
        (await make_member(db, role=role, tenant_id=owner.tenant_id)).headers
        for role in ("assistant", "viewer")
    ]
    others += [(await make_platform_admin(db)).headers, {}]
    routes = [
        ("GET", f"/api/v1/records/{record['id']}"),
        ("GET", f"/api/v1/records/{record['id']}/versions"),
        ("PATCH", f"/api/v1/records/{record['id']}"),
        ("GET", f"/api/v1/patients/{patient}/records"),
        ("POST", f"/api/v1/patients/{patient}/records"),
        ("GET", f"/api/v1/patients/{patient}/records/export"),
    ]
    for headers in others:
        for method, path in routes:
            response = await client.request(method, path, json={"content": "x"}, headers=headers)
            assert response.status_code == (401 if not headers else 403), (method, path)
            assert SECRET_PHRASE not in response.text
    stranger = await make_member(db, role="owner")
    foreign = await client.get(f"/api/v1/records/{record['id']}", headers=stranger.headers)
    assert foreign.status_code == 404


async def test_the_stored_bytes_hold_no_plaintext(
    client: httpx.AsyncClient, db: FastAPI, admin_engine: AsyncEngine
) -> None:
    owner = await make_member(db, role="owner")
    await write(client, owner, await patient_of(client, owner), SECRET_PHRASE)
    async with admin_engine.connect() as connection:
        blobs = (
            (await connection.execute(text("SELECT ciphertext FROM medical_record_versions")))
            .scalars()
            .all()
        )
        dump = " ".join(
            (
                await connection.execute(text("SELECT row_to_json(t)::text FROM medical_records t"))
            ).scalars()
        )
    assert blobs
    assert all(SECRET_PHRASE.encode() not in bytes(blob) for blob in blobs)
    assert SECRET_PHRASE not in dump


async def test_bad_record_input_stores_nothing(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    for body in (
        {"content": ""},
        {"content": "x" * 200_001},
        {"content": "x", "kind": "Bad Kind"},
        {"content": "x", "kind": "diary"},
    ):
        response = await client.post(
            f"/api/v1/patients/{patient}/records", json=body, headers=owner.headers
        )
        assert response.status_code == 422
    missing = await client.post(
        f"/api/v1/patients/{uuid.uuid4()}/records", json={"content": "x"}, headers=owner.headers
    )
    assert missing.status_code == 404
    assert (await client.get(f"/api/v1/patients/{patient}/records", headers=owner.headers)).json()[
        "items"
    ] == []


async def test_rotate_key_re_encrypts_so_the_old_key_can_go(
    client: httpx.AsyncClient,
    db: FastAPI,
    pg_database: PgTestDatabase,
    admin_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await make_member(db, role="owner")
    record = await write(client, owner, await patient_of(client, owner), SECRET_PHRASE)
    old = db.state.settings.encryption_keys.get_secret_value()
    new = generate_key_entry("k2026")
    monkeypatch.setenv("DATABASE_URL", pg_database.app_url)
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{new},{old}")
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["records", "rotate-key"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Re-sealed with key 'k2026'" in result.output
    assert "1 record versions" in result.output
    async with admin_engine.connect() as connection:
        key_ids = (
            (await connection.execute(text("SELECT key_id FROM medical_record_versions")))
            .scalars()
            .all()
        )
    assert key_ids == ["k2026"]
    db.state.key_ring = KeyRing.from_setting(new)  # the old key is gone
    try:
        again = await client.get(f"/api/v1/records/{record['id']}", headers=owner.headers)
    finally:
        db.state.key_ring = KeyRing.from_setting(old)
    assert again.json()["content"] == SECRET_PHRASE


def test_key_ring_refuses_bad_settings_without_echoing_keys() -> None:
    for value in (
        "",
        "nocolon",
        "a:" + "A" * 10,
        "a:!!!!",
        f"{generate_key_entry('x')},{generate_key_entry('x')}",
    ):
        with pytest.raises(EncryptionConfigError) as caught:
            KeyRing.from_setting(value)
        assert "A" * 10 not in str(caught.value)
    assert "AAAA" not in repr(KeyRing.from_setting(generate_key_entry("k1")))

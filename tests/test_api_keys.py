"""API keys: shown once, stored hashed, scoped, rotatable with grace, revocable, plan-gated."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from clinicflow.apikeys.models import ApiKey
from clinicflow.core.models import utcnow
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.tenants.models import Plan, Tenant
from tests.factories import make_member

KEYS = "/api/v1/api-keys"
# A tenant route outside every API-key scope: a valid key gets 403 there, an invalid one 401.
OUT_OF_SCOPE = "/api/v1/tenant/members"


def key_header(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


async def create_key(
    client: httpx.AsyncClient, owner_headers: dict[str, str], **body: object
) -> dict:
    payload = {
        "name": "Receptionist bot",
        "scopes": ["patients:read", "appointments:write"],
        **body,
    }
    response = await client.post(KEYS, json=payload, headers=owner_headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_secret_is_shown_once_and_stored_only_as_a_hash(
    client: httpx.AsyncClient, db: FastAPI, admin_engine: AsyncEngine
) -> None:
    owner = await make_member(db, role="owner")
    created = await create_key(client, owner.headers)
    second = await create_key(client, owner.headers)
    assert created["key"].startswith("cf_live_")
    shown_tail = created["prefix"].removeprefix("cf_live_...")
    assert created["key"].rpartition("_")[0].endswith(shown_tail)  # recognisable in the key
    assert created["scopes"] == ["appointments:write", "patients:read"]
    listed = await client.get(KEYS, headers=owner.headers)
    assert created["key"] not in listed.text
    # Two keys of one practice can be told apart in the list.
    assert sorted(item["prefix"] for item in listed.json()["items"]) == sorted(
        [created["prefix"], second["prefix"]]
    )
    assert created["prefix"] != second["prefix"]
    async with admin_engine.connect() as connection:
        dump = " ".join(
            (
                await connection.execute(text("SELECT row_to_json(k)::text FROM api_keys k"))
            ).scalars()
        )
    assert created["key"] not in dump


async def test_a_valid_key_authenticates_but_is_held_to_its_scopes(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    created = await create_key(client, owner.headers)
    scoped = await client.get(OUT_OF_SCOPE, headers=key_header(created["key"]))
    assert scoped.status_code == 403
    assert "members:read" in scoped.json()["detail"]
    for user_only in ("/api/v1/auth/me", "/api/v1/users/me", KEYS):
        assert (await client.get(user_only, headers=key_header(created["key"]))).status_code in (
            401,
            403,
        )


async def test_malformed_forged_expired_and_revoked_keys_are_401(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    created = await create_key(client, owner.headers)
    secret = created["key"]
    forged = secret[:-3] + ("abc" if not secret.endswith("abc") else "abd")  # checksum breaks
    for bad in ("nope", "cf_live_", forged, "cf_live_" + "A" * 48 + "_00000000"):
        assert (await client.get(OUT_OF_SCOPE, headers=key_header(bad))).status_code == 401
    async with db.state.database.sessionmaker() as session, session.begin():
        await set_session_tenant(session, owner.tenant_id)
        await session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await client.get(OUT_OF_SCOPE, headers=key_header(secret))).status_code == 401
    other = await create_key(client, owner.headers)
    assert (await client.delete(f"{KEYS}/{other['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get(OUT_OF_SCOPE, headers=key_header(other["key"]))).status_code == 401


async def test_rotation_keeps_the_old_secret_for_the_grace_period_only(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    first = await create_key(client, owner.headers)
    graced = await client.post(
        f"{KEYS}/{first['id']}/rotate", json={"grace_seconds": 3600}, headers=owner.headers
    )
    assert graced.status_code == 201
    assert graced.json()["key"] != first["key"]
    assert graced.json()["scopes"] == first["scopes"]
    for secret in (first["key"], graced.json()["key"]):
        assert (await client.get(OUT_OF_SCOPE, headers=key_header(secret))).status_code == 403
    immediate = await client.post(
        f"{KEYS}/{graced.json()['id']}/rotate", json={"grace_seconds": 0}, headers=owner.headers
    )
    assert (
        await client.get(OUT_OF_SCOPE, headers=key_header(graced.json()["key"]))
    ).status_code == 401
    assert (
        await client.get(OUT_OF_SCOPE, headers=key_header(immediate.json()["key"]))
    ).status_code == 403


async def test_scopes_are_limited_to_what_a_key_may_hold(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    for scopes in (["records:read"], ["finance:write"], ["settings:manage"], [], ["nonsense"]):
        response = await client.post(
            KEYS, json={"name": "x", "scopes": scopes}, headers=owner.headers
        )
        assert response.status_code == 422, scopes
    past = await client.post(
        KEYS,
        json={"name": "x", "scopes": ["patients:read"], "expires_at": "2020-01-01T00:00:00Z"},
        headers=owner.headers,
    )
    assert past.status_code == 422
    assert (await client.get(KEYS, headers=owner.headers)).json()["items"] == []


async def test_another_practices_key_is_404_and_keeps_working(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, stranger = await make_member(db, role="owner"), await make_member(db, role="owner")
    theirs = await create_key(client, stranger.headers)
    for method, path in (("DELETE", theirs["id"]), ("POST", f"{theirs['id']}/rotate")):
        response = await client.request(method, f"{KEYS}/{path}", json={}, headers=owner.headers)
        assert response.status_code == 404
    assert (await client.get(OUT_OF_SCOPE, headers=key_header(theirs["key"]))).status_code == 403
    missing = await client.delete(f"{KEYS}/{uuid.uuid4()}", headers=owner.headers)
    assert missing.status_code == 404


async def test_a_plan_without_api_access_refuses_keys(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    created = await create_key(client, owner.headers)
    async with db.state.database.sessionmaker() as session, session.begin():
        plan = Plan(name=f"No API {uuid.uuid4().hex[:6]}", api_access=False)
        session.add(plan)
        await session.flush()
        await session.execute(
            update(Tenant).where(Tenant.id == owner.tenant_id).values(plan_id=plan.id)
        )
    refused = await client.get(OUT_OF_SCOPE, headers=key_header(created["key"]))
    assert refused.status_code == 403
    assert "plan" in refused.json()["detail"]
    not_issued = await client.post(
        KEYS, json={"name": "bot", "scopes": ["patients:read"]}, headers=owner.headers
    )
    assert not_issued.status_code == 402  # a key that every use would refuse is not issued
    assert not_issued.json()["limit"] == "api_access"
    listed = await client.get(KEYS, headers=owner.headers)
    assert [key["id"] for key in listed.json()["items"]] == [created["id"]]


async def test_a_key_is_rotated_once_and_never_after_it_expired(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """Rotating a key in its grace period would give it a second live successor; rotating an
    expired one would issue a key whose expiry (inherited) has passed. Both are refused and
    nothing is issued."""
    owner = await make_member(db, role="owner")
    first = await create_key(client, owner.headers)
    rotated = await client.post(
        f"{KEYS}/{first['id']}/rotate", json={"grace_seconds": 3600}, headers=owner.headers
    )
    assert rotated.status_code == 201
    again = await client.post(
        f"{KEYS}/{first['id']}/rotate", json={"grace_seconds": 3600}, headers=owner.headers
    )
    assert again.status_code == 409, again.text
    assert "rotated already" in again.json()["detail"]
    # The grace runs out (as if its time had passed): the old key is expired, so 404.
    async with db.state.database.sessionmaker() as session, session.begin():
        await set_session_tenant(session, owner.tenant_id)
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(first["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = await client.post(
        f"{KEYS}/{first['id']}/rotate", json={"grace_seconds": 0}, headers=owner.headers
    )
    assert expired.status_code == 404, expired.text
    # A key that expired without ever being rotated is not rotated into a dead key either.
    short = await create_key(
        client, owner.headers, expires_at=(utcnow() + timedelta(hours=1)).isoformat()
    )
    async with db.state.database.sessionmaker() as session, session.begin():
        await set_session_tenant(session, owner.tenant_id)
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(short["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    dead = await client.post(
        f"{KEYS}/{short['id']}/rotate", json={"grace_seconds": 0}, headers=owner.headers
    )
    assert dead.status_code == 404
    listed = await client.get(KEYS, headers=owner.headers)
    assert [key["id"] for key in listed.json()["items"]] == [rotated.json()["id"]]
    # The successor is the one key to rotate now.
    successor = await client.post(
        f"{KEYS}/{rotated.json()['id']}/rotate", json={"grace_seconds": 0}, headers=owner.headers
    )
    assert successor.status_code == 201

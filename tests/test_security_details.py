"""The smaller holes an attack on the API found, each closed and kept closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from tests import documented_statuses
from tests.conftest import make_production_settings
from tests.factories import make_member
from tests.test_rate_limits import limited_client

STRONG = "LzJpG-O1c7QdR-G3KO1uPS35zPo0AcBV5RhEwdvew-QAT-h_"
KEYS = "k1:gQnVfnalDb2vfkT2vaZLp-xZD-3h_icGlSbP_TZ0-Us"


async def _key(client: httpx.AsyncClient, owner_headers: dict[str, str], **body: object) -> dict:  # type: ignore[type-arg]
    created = await client.post(
        "/api/v1/api-keys", json={"name": "bot", "scopes": ["patients:read"], **body},
        headers=owner_headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_a_demoted_owners_api_keys_stop_working(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    second = await make_member(db, role="owner", tenant_id=owner.tenant_id)
    key = await _key(client, second.headers)
    headers = {"X-API-Key": key["key"]}
    assert (await client.get("/api/v1/patients", headers=headers)).status_code == 200
    demoted = await client.patch(
        f"/api/v1/tenant/members/{second.user_id}", json={"role": "viewer"}, headers=owner.headers
    )
    assert demoted.status_code == 200
    assert (await client.get("/api/v1/patients", headers=headers)).status_code == 401


async def test_a_removed_members_logins_no_longer_land_in_the_practice(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    removed = await client.delete(
        f"/api/v1/tenant/members/{assistant.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204
    login = await client.post(
        "/api/v1/auth/login",
        json={"username": assistant.email, "password": assistant.password},
    )
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["tenant_id"] is None  # no longer the practice it was removed from


async def test_a_rotated_key_keeps_its_expiry(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    key = await _key(client, owner.headers, expires_at=expires.isoformat())
    rotated = await client.post(
        f"/api/v1/api-keys/{key['id']}/rotate", json={"grace_seconds": 0}, headers=owner.headers
    )
    assert rotated.status_code == 201
    assert datetime.fromisoformat(rotated.json()["expires_at"]) == expires


def test_production_refuses_a_weak_previous_secret_key() -> None:
    with pytest.raises(ValidationError, match="PREVIOUS_SECRET_KEYS"):
        make_production_settings(previous_secret_keys="short-old-key")
    old_key = "Yl0p4Wc8-2rT5vX9bN3mQ7sD1fG6hJ0kL4zA8cE2uI"
    assert make_production_settings(previous_secret_keys=old_key).previous_secret_keys


async def test_production_serves_no_docs_and_no_readiness_details(
    db: FastAPI, settings: Settings
) -> None:
    production = make_production_settings(database_url=settings.database_url)
    app = create_app(production)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=documented_statuses.recording(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            docs = await client.get("/docs")
            redoc = await client.get("/redoc")
            ready = await client.get("/health/ready")
            document = await client.get("/api/v1/openapi.json")
            root = await client.get("/")
    assert (docs.status_code, redoc.status_code) == (404, 404)
    assert root.json()["docs"] is None  # no link to pages that are not there
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}
    assert document.status_code == 200  # clients are still generated from it


async def test_username_changes_have_a_tight_limit(db: FastAPI, settings: Settings) -> None:
    member = await make_member(db)
    async with limited_client(settings, rate_limit_profile="3/hour") as client:
        answers = [
            await client.put(
                "/api/v1/users/me", json={"username": f"probe{n}"}, headers=member.headers
            )
            for n in range(4)
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]


async def test_a_huge_invalid_body_gets_a_small_422(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    body = {"name": "bot", "scopes": [{"not": "a scope"}] * 40_000}
    response = await client.post("/api/v1/api-keys", json=body, headers=owner.headers)
    assert response.status_code == 422
    assert len(response.content) < 20_000  # was ~8x the request
    assert len(response.json()["errors"]) == 20
    assert response.json()["error_count"] == 40_000


async def test_finance_writes_and_patient_reads_name_their_actor(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    entry = await client.post(
        "/api/v1/financial-entries",
        json={"kind": "income", "amount": "90.00", "due_date": "2031-01-06"},
        headers=assistant.headers,
    )
    assert entry.json()["created_by"] == str(assistant.user_id)
    changed = await client.patch(
        f"/api/v1/financial-entries/{entry.json()['id']}", json={"method": "cash"},
        headers=owner.headers,
    )  # fmt: skip
    assert changed.json()["updated_by"] == str(owner.user_id)
    patient = await client.post(
        "/api/v1/patients", json={"full_name": "Audited"}, headers=assistant.headers
    )
    await client.get(f"/api/v1/patients/{patient.json()['id']}", headers=assistant.headers)
    await client.patch(
        f"/api/v1/patients/{patient.json()['id']}", json={"phone": "+55 11 90000-0000"},
        headers=assistant.headers,
    )  # fmt: skip
    trail = (await client.get("/api/v1/audit-events?limit=200", headers=owner.headers)).json()
    seen = {(event["action"], event["actor_user_id"]) for event in trail["items"]}
    for action, actor in (
        ("finance.entry_created", assistant.user_id),
        ("finance.entry_updated", owner.user_id),
        ("patient.read", assistant.user_id),
        ("patient.updated", assistant.user_id),
    ):
        assert (action, str(actor)) in seen, action

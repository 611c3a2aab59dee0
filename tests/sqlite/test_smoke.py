"""Smoke suite on the embedded SQLite database: migrations, health, tenant scoping."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import select

from clinicflow.core import migrate
from clinicflow.core.security import hasher_for
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import TenantScopeViolation, set_session_tenant
from clinicflow.tenants.models import Membership, Role
from clinicflow.tenants.service import add_member, create_tenant
from clinicflow.users.service import create_user
from tests import documented_statuses
from tests.factories import make_api_key, make_member


def test_migrations_match_the_models_on_sqlite(settings: Settings) -> None:
    migrate.check(settings)


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 200
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


async def test_application_scope_isolates_tenants(db: FastAPI) -> None:
    async with db.state.database.sessionmaker() as session, session.begin():
        tenants = []
        for letter in "ab":
            tenant = await create_tenant(session, name=f"Practice {letter}")
            user = await create_user(
                session, hasher_for(db.state.settings), email=f"o@{letter}.example",
                password="k9#vQ2pX-long", full_name=f"Owner {letter}",
            )  # fmt: skip
            await add_member(session, tenant, user, Role.OWNER)
            tenants.append((tenant.id, user.id))
    (a, user_a), (b, _) = tenants
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, a)
        assert [m.tenant_id for m in (await session.execute(select(Membership))).scalars()] == [a]
        await set_session_tenant(session, None)
        assert (await session.execute(select(Membership))).scalars().all() == []
        await set_session_tenant(session, a)
        session.add(Membership(tenant_id=b, user_id=user_a, role=Role.VIEWER))
        with pytest.raises(TenantScopeViolation):
            await session.flush()


async def test_login_and_tenant_scoped_requests(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    other = await make_member(db, role="assistant")
    response = await client.post(
        "/api/v1/auth/login", json={"username": owner.email, "password": owner.password}
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    members = await client.get(
        "/api/v1/tenant/members", headers={"Authorization": f"Bearer {token}"}
    )
    assert [m["email"] for m in members.json()["items"]] == [owner.email]
    foreign = await client.patch(
        f"/api/v1/tenant/members/{other.user_id}", json={"role": "viewer"}, headers=owner.headers
    )
    assert foreign.status_code == 404
    practices = await client.get("/api/v1/users/me/practices", headers=owner.headers)
    assert [p["tenant_id"] for p in practices.json()["items"]] == [str(owner.tenant_id)]


async def test_the_mcp_receptionist_works_on_the_embedded_database(db: FastAPI) -> None:
    """The SDK's client over the app in-process (its http_client is an ASGI-transport client)."""
    owner = await make_member(db, role="owner")
    key = await make_api_key(db, owner.tenant_id, ["patients:read", "patients:write"])
    transport = httpx.ASGITransport(app=documented_statuses.recording(db))
    async with (
        httpx.AsyncClient(transport=transport, headers={"X-API-Key": key}) as http,
        streamable_http_client("http://testserver/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        names = {tool.name for tool in (await session.list_tools()).tools}
        created = await session.call_tool("create_patient", {"full_name": "Zoë Araújo"})
        found = await session.call_tool("find_patient", {"query": "zoe arau"})
    assert names == {"find_patient", "create_patient"}
    assert not created.isError
    assert found.structuredContent is not None
    assert [item["full_name"] for item in found.structuredContent["items"]] == ["Zoë Araújo"]


async def test_list_pages_show_only_the_callers_practice(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """List pages are read as column rows: the application scope must filter them too (no RLS
    here to catch a statement it missed)."""
    owners = [await make_member(db, role="owner") for _ in range(2)]
    booked: list[tuple[str, str]] = []
    for number, owner in enumerate(owners):
        patient = await client.post(
            "/api/v1/patients", json={"full_name": f"Patient {number}"}, headers=owner.headers
        )
        appointment = await client.post(
            "/api/v1/appointments",
            json={
                "patient_id": patient.json()["id"],
                "start": "2031-03-03T13:00:00Z",
                "duration_minutes": 30,
            },
            headers=owner.headers,
        )
        assert appointment.status_code == 201, appointment.text
        booked.append((patient.json()["id"], appointment.json()["id"]))
    for owner, (patient_id, appointment_id) in zip(owners, booked, strict=True):
        patients = await client.get("/api/v1/patients", headers=owner.headers)
        agenda = await client.get(
            "/api/v1/appointments",
            params={"from": "2031-03-01T00:00:00Z", "to": "2031-03-08T00:00:00Z"},
            headers=owner.headers,
        )
        assert [item["id"] for item in patients.json()["items"]] == [patient_id]
        assert [item["id"] for item in agenda.json()["items"]] == [appointment_id]


async def test_a_booking_fans_out_to_the_practices_webhook_on_the_embedded_database(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """The driver-path reads of a write (is the professional a member, which subscriptions
    listen) take the ORM's way on SQLite, scoped the same."""
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    stranger = await make_member(db, role="owner")
    hook = await client.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/hook", "events": ["appointment.created"]},
        headers=owner.headers,
    )
    patient = await client.post(
        "/api/v1/patients", json={"full_name": "Edu"}, headers=owner.headers
    )
    booking = {"patient_id": patient.json()["id"], "start": "2030-03-12T09:00:00-03:00"}
    booked = await client.post(
        "/api/v1/appointments",
        json={**booking, "professional_id": str(owner.user_id)},
        headers=assistant.headers,
    )
    foreign = await client.post(
        "/api/v1/appointments",
        json={**booking, "professional_id": str(stranger.user_id)},
        headers=assistant.headers,
    )
    deliveries = await client.get(
        f"/api/v1/webhooks/{hook.json()['id']}/deliveries", headers=owner.headers
    )
    assert booked.status_code == 201, booked.text
    assert foreign.status_code == 404
    assert [item["event_type"] for item in deliveries.json()["items"]] == ["appointment.created"]

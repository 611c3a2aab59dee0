"""Another practice's id answers 404, exactly like an id that does not exist (SPEC §4).

Every route with a path parameter naming a practice's resource is listed from the OpenAPI
document; a parameter without a factory here fails the suite, so new routes are covered.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import Member, make_api_key, make_member
from tests.test_permission_matrix import ROUTES

Factory = Callable[[httpx.AsyncClient, FastAPI, Member], Awaitable[str]]


async def _patient(client: httpx.AsyncClient, db: FastAPI, member: Member) -> str:
    response = await client.post(
        "/api/v1/patients", json={"full_name": "Theirs"}, headers=member.headers
    )
    return str(response.json()["id"])


async def _appointment(client: httpx.AsyncClient, db: FastAPI, member: Member) -> str:
    body = {"patient_id": await _patient(client, db, member), "start": "2026-03-09T09:00:00Z"}
    response = await client.post("/api/v1/appointments", json=body, headers=member.headers)
    return str(response.json()["id"])


async def _record(client: httpx.AsyncClient, db: FastAPI, member: Member) -> str:
    patient = await _patient(client, db, member)
    response = await client.post(
        f"/api/v1/patients/{patient}/records", json={"content": "theirs"}, headers=member.headers
    )
    return str(response.json()["id"])


async def _entry(client: httpx.AsyncClient, db: FastAPI, member: Member) -> str:
    body = {"kind": "income", "amount": "10.00", "due_date": "2026-03-09"}
    response = await client.post("/api/v1/financial-entries", json=body, headers=member.headers)
    return str(response.json()["id"])


async def _api_key(client: httpx.AsyncClient, db: FastAPI, member: Member) -> str:
    await make_api_key(db, member.tenant_id, ["patients:read"])  # type: ignore[arg-type]
    response = await client.get("/api/v1/api-keys", headers=member.headers)
    return str(response.json()["items"][0]["id"])


async def _invitation(client: httpx.AsyncClient, db: FastAPI, member: Member) -> str:
    body = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "role": "viewer"}
    response = await client.post("/api/v1/invitations", json=body, headers=member.headers)
    return str(response.json()["id"])


async def _webhook(client: httpx.AsyncClient, db: FastAPI, member: Member) -> str:
    body = {"url": "http://127.0.0.1:9/hook", "events": ["patient.created"]}
    response = await client.post("/api/v1/webhooks", json=body, headers=member.headers)
    return str(response.json()["id"])


async def _member(client: httpx.AsyncClient, db: FastAPI, member: Member) -> str:
    return str(member.user_id)


FACTORIES: dict[str, Factory] = {
    "patient_id": _patient,
    "appointment_id": _appointment,
    "record_id": _record,
    "entry_id": _entry,
    "key_id": _api_key,
    "invitation_id": _invitation,
    "webhook_id": _webhook,
}
# Paths whose parameter means something else: platform admin routes, the caller's own sessions
# (tested in test_auth), public invitation tokens, and members (a user id is not practice-owned).
NOT_PRACTICE_RESOURCES = (
    "/api/v1/users/",
    "/api/v1/auth/sessions/",
    "/api/v1/invitations/{token}",
    "/api/v1/tenants/",
    "/api/v1/plans/",
    "/api/v1/metrics/tenants/",  # the platform admin's view of every practice
)
BODIES = {
    "/status": {"status": "confirmed"},
    "/records": {"content": "ours"},
    "/api/v1/records/{record_id}": {"content": "ours"},
    "/members/{user_id}": {"role": "viewer"},
}
SCOPED = [
    (method, path)
    for method, path in ROUTES
    if "{" in path and not path.startswith(NOT_PRACTICE_RESOURCES)
]


def _body(method: str, path: str) -> dict[str, object]:
    if method not in ("POST", "PATCH", "PUT"):
        return {}
    for suffix, body in BODIES.items():
        if path.endswith(suffix):
            return body
    return {}


def test_every_practice_scoped_parameter_has_a_factory() -> None:
    params = {name for _, path in SCOPED for name in re.findall(r"\{(\w+)\}", path)}
    assert params - set(FACTORIES) - {"user_id"} == set()


@pytest.mark.parametrize(("method", "path"), SCOPED, ids=[f"{m} {p}" for m, p in SCOPED])
async def test_another_practices_id_is_404_like_a_missing_one(
    client: httpx.AsyncClient, db: FastAPI, method: str, path: str
) -> None:
    ours, theirs = await make_member(db, role="owner"), await make_member(db, role="owner")
    (name,) = re.findall(r"\{(\w+)\}", path)
    foreign_id = await (FACTORIES.get(name) or _member)(client, db, theirs)
    body = _body(method, path)
    foreign = await client.request(
        method, path.replace(f"{{{name}}}", foreign_id), json=body, headers=ours.headers
    )
    missing = await client.request(
        method, path.replace(f"{{{name}}}", str(uuid.uuid4())), json=body, headers=ours.headers
    )
    assert foreign.status_code == missing.status_code == 404, (foreign.text, missing.text)
    strip = lambda problem: {k: v for k, v in problem.items() if k != "instance"}  # noqa: E731
    assert strip(foreign.json()) == strip(missing.json())

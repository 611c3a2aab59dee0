"""Patients: CRUD, accent-insensitive search, pages, custom fields, soft delete, isolation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from clinicflow.core.tenancy import set_session_tenant
from clinicflow.patients.models import Patient
from clinicflow.tenants.models import Plan, Tenant
from tests.factories import make_api_key, make_member

PATIENTS = "/api/v1/patients"
FIELDS = [
    {"key": "insurance", "label": "Insurance", "type": "choice", "required": True,
     "choices": ["none", "unimed", "bradesco"]},
    {"key": "sessions_per_month", "label": "Sessions per month", "type": "number"},
    {"key": "first_visit", "label": "First visit", "type": "date"},
]  # fmt: skip


async def set_custom_fields(db: FastAPI, tenant_id: uuid.UUID | None, fields: list[dict]) -> None:
    async with db.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id)
            .values(settings={"custom_patient_fields": fields})
        )


async def stored_patients(db: FastAPI, tenant_id: uuid.UUID | None) -> list[Patient]:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, tenant_id)
        return list((await session.execute(select(Patient))).scalars())


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict:
    response = await client.post(
        PATIENTS, json={"full_name": "Maria Silva", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_read_update_and_soft_delete(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    created = await create(
        client, owner.headers, full_name="João Pereira", birth_date="1990-05-17",
        email="joao@example.com", phone="+55 (11) 98765-4321", document="123.456.789-00",
        notes="Prefers mornings",
    )  # fmt: skip
    assert created["birth_date"] == "1990-05-17"
    assert created["active"] is True
    path = f"{PATIENTS}/{created['id']}"
    assert (await client.get(path, headers=owner.headers)).json()["email"] == "joao@example.com"
    patched = await client.patch(path, json={"phone": "11 5555-0000"}, headers=owner.headers)
    assert patched.status_code == 200
    assert patched.json()["phone"] == "11 5555-0000"
    assert patched.json()["full_name"] == "João Pereira"  # untouched fields stay
    assert (await client.delete(path, headers=owner.headers)).status_code == 204
    assert (await client.get(path, headers=owner.headers)).status_code == 404
    assert (await client.get(PATIENTS, headers=owner.headers)).json()["items"] == []
    kept = await stored_patients(db, owner.tenant_id)
    assert kept[0].deleted_at is not None  # soft: still stored for the retention period


async def test_search_is_accent_and_case_insensitive_on_name_phone_document(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    await create(client, owner.headers, full_name="João Pereira", phone="+55 11 91234-5678")
    await create(client, owner.headers, full_name="Ana Lúcia", document="987.654.321-00")
    await create(client, owner.headers, full_name="Bruno 100%", email="bruno@clinic.example")

    async def names(q: str) -> list[str]:
        response = await client.get(PATIENTS, params={"q": q}, headers=owner.headers)
        return [item["full_name"] for item in response.json()["items"]]

    assert await names("joao") == ["João Pereira"]
    assert await names("LUCIA") == ["Ana Lúcia"]
    assert await names("91234") == ["João Pereira"]
    assert await names("98765432100") == ["Ana Lúcia"]
    assert await names("clinic.example") == ["Bruno 100%"]
    assert await names("%") == ["Bruno 100%"]  # wildcards are searched literally
    assert await names("nobody") == []


async def test_cursor_pages_walk_every_patient_once(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    for name in ("Eva", "Ana", "Caio", "Bia", "Dora"):
        await create(client, owner.headers, full_name=name)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(PATIENTS, params=params, headers=owner.headers)).json()
        seen += [item["full_name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Ana", "Bia", "Caio", "Dora", "Eva"]
    too_big = await client.get(PATIENTS, params={"limit": 201}, headers=owner.headers)
    assert too_big.status_code == 422


async def test_custom_fields_are_validated_against_the_practice_definitions(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    await set_custom_fields(db, owner.tenant_id, FIELDS)
    good = await create(
        client, owner.headers, custom_fields={"insurance": "unimed", "first_visit": "2026-01-05"}
    )
    assert good["custom_fields"] == {"insurance": "unimed", "first_visit": "2026-01-05"}
    cases = {
        "custom_fields.shoe_size": {"insurance": "none", "shoe_size": 42},
        "custom_fields.insurance": {"insurance": "amil"},
        "custom_fields.sessions_per_month": {"insurance": "none", "sessions_per_month": "four"},
        # An integer past any float: exports (XLSX) and JSON readers cannot hold it.
        " custom_fields.sessions_per_month": {"insurance": "none", "sessions_per_month": 10**309},
        "custom_fields.first_visit": {"insurance": "none", "first_visit": "05/01/2026"},
        "custom_fields.first_visit ": {"insurance": "none", "first_visit": "20260105"},
        " custom_fields.first_visit": {"insurance": "none", "first_visit": 20260105},
    }
    for field, values in cases.items():
        response = await client.post(
            PATIENTS, json={"full_name": "Bad", "custom_fields": values}, headers=owner.headers
        )
        assert response.status_code == 422, values
        assert field.strip() in [error["field"] for error in response.json()["errors"]]
    missing = await client.post(PATIENTS, json={"full_name": "No insurance"}, headers=owner.headers)
    assert missing.json()["errors"][0]["field"] == "custom_fields.insurance"
    assert [p.full_name for p in await stored_patients(db, owner.tenant_id)] == ["Maria Silva"]
    removed = await client.patch(
        f"{PATIENTS}/{good['id']}",
        json={"custom_fields": {"insurance": None}},
        headers=owner.headers,
    )
    assert removed.status_code == 422  # required: cannot be removed


@pytest.mark.parametrize(
    "number", ["NaN", "Infinity", "-Infinity", "1e400", "9" * 5000], ids=lambda n: n[:9]
)
async def test_numbers_json_does_not_have_are_422_and_store_nothing(
    client: httpx.AsyncClient, db: FastAPI, number: str
) -> None:
    """Python's parser takes these; PostgreSQL's json does not (it was a 500 on PostgreSQL and
    a stored NaN on SQLite), and the longest is past Python's own integer limit."""
    owner = await make_member(db, role="owner")
    await set_custom_fields(
        db, owner.tenant_id, [{"key": "score", "label": "Score", "type": "number"}]
    )
    body = f'{{"full_name": "N", "custom_fields": {{"score": {number}}}}}'
    response = await client.post(
        PATIENTS, content=body, headers={**owner.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "The request body is not valid JSON."
    assert await stored_patients(db, owner.tenant_id) == []


async def test_bad_inputs_are_4xx_and_store_nothing(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    bodies = [
        {"full_name": ""},
        {"full_name": "X", "email": "not-an-email"},
        {"full_name": "X", "birth_date": "2999-01-01"},
        {"full_name": "X", "unknown": 1},
        {"full_name": "X", "notes": "n" * 10_001},
    ]
    for body in bodies:
        response = await client.post(PATIENTS, json=body, headers=owner.headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    huge = await client.post(
        PATIENTS, json={"full_name": "X", "notes": "n" * 10_000_000}, headers=owner.headers
    )
    assert huge.status_code == 413
    assert await stored_patients(db, owner.tenant_id) == []


async def test_an_oversized_streamed_body_is_413_and_stores_nothing(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """No Content-Length (chunked): the size is found while a middleware reads the body."""
    owner = await make_member(db, role="owner")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"full_name": "X", "notes": "'
        for _ in range(40):
            yield b"n" * 100_000
        yield b'"}'

    response = await client.post(
        PATIENTS,
        content=chunks(),
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert await stored_patients(db, owner.tenant_id) == []


async def test_another_practices_patient_is_404_exactly_like_a_missing_one(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, stranger = await make_member(db, role="owner"), await make_member(db, role="owner")
    theirs = await create(client, stranger.headers, full_name="Their Patient")
    for method in ("GET", "PATCH", "DELETE"):
        foreign = await client.request(
            method, f"{PATIENTS}/{theirs['id']}", json={}, headers=owner.headers
        )
        missing = await client.request(
            method, f"{PATIENTS}/{uuid.uuid4()}", json={}, headers=owner.headers
        )
        assert foreign.status_code == missing.status_code == 404
        assert {k: v for k, v in foreign.json().items() if k != "instance"} == {
            k: v for k, v in missing.json().items() if k != "instance"
        }
    assert (await client.get(PATIENTS, headers=owner.headers)).json()["items"] == []
    assert (
        await client.get(f"{PATIENTS}/{theirs['id']}", headers=stranger.headers)
    ).status_code == 200


async def test_roles_assistant_writes_but_only_the_owner_deletes(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    viewer = await make_member(db, role="viewer", tenant_id=owner.tenant_id)
    created = await create(client, assistant.headers)
    path = f"{PATIENTS}/{created['id']}"
    assert (
        await client.patch(path, json={"notes": "x"}, headers=assistant.headers)
    ).status_code == 200
    assert (await client.delete(path, headers=assistant.headers)).status_code == 403
    assert (await client.get(PATIENTS, headers=viewer.headers)).status_code == 403
    assert (await client.delete(path, headers=owner.headers)).status_code == 204


async def test_plan_limit_names_the_limit(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    async with db.state.database.sessionmaker() as session, session.begin():
        plan = Plan(name=f"Solo {uuid.uuid4().hex[:4]}", max_patients=2)
        session.add(plan)
        await session.flush()
        await session.execute(
            update(Tenant).where(Tenant.id == owner.tenant_id).values(plan_id=plan.id)
        )
    await create(client, owner.headers)
    await create(client, owner.headers)
    third = await client.post(PATIENTS, json={"full_name": "Third"}, headers=owner.headers)
    assert third.status_code == 402
    assert "at most 2 patients" in third.json()["detail"]
    assert third.json()["limit"] == "max_patients"


async def test_an_api_key_with_patients_scopes_reads_and_writes(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    reader = await make_api_key(db, owner.tenant_id, ["patients:read"])  # type: ignore[arg-type]
    writer = await make_api_key(db, owner.tenant_id, ["patients:read", "patients:write"])  # type: ignore[arg-type]
    created = await client.post(
        PATIENTS, json={"full_name": "Bot Made"}, headers={"X-API-Key": writer}
    )
    assert created.status_code == 201
    assert (
        await client.post(PATIENTS, json={"full_name": "No"}, headers={"X-API-Key": reader})
    ).status_code == 403
    found = await client.get(PATIENTS, params={"q": "bot"}, headers={"X-API-Key": reader})
    assert [item["full_name"] for item in found.json()["items"]] == ["Bot Made"]
    deleted = await client.delete(
        f"{PATIENTS}/{created.json()['id']}", headers={"X-API-Key": writer}
    )
    assert deleted.status_code == 403
    keys = await client.get("/api/v1/api-keys", headers=owner.headers)
    assert all(item["last_used_at"] is not None for item in keys.json()["items"])

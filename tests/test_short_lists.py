"""SPEC §4: every list takes `limit` and `cursor` and answers `next_cursor`, the short ones
too (members, API keys, sessions, invitations, plans, professionals, a patient's records, an
appointment's status history): their pages, followed to the end, give each item once, in the
list's order."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from clinicflow.auth.models import AuthSession
from clinicflow.core.models import utcnow
from clinicflow.core.text import normalize
from tests.factories import make_api_key, make_member, make_platform_admin
from tests.test_appointments import book, patient_of


async def _pages(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> list[list[dict[str, Any]]]:
    """The list two at a time, following next_cursor to the end."""
    pages: list[list[dict[str, Any]]] = []
    params = {"limit": "2"}
    while True:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages
        params = {"limit": "2", "cursor": cursor}


def _identity(item: dict[str, Any]) -> str:
    """Its id where it has one (a status change has none: the whole item)."""
    return str(item.get("id") or item.get("user_id") or sorted(item.items()))


async def _walks_the_whole_list(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], count: int
) -> list[dict[str, Any]]:
    whole = await client.get(path, headers=headers)
    assert whole.status_code == 200
    assert whole.json()["next_cursor"] is None
    items: list[dict[str, Any]] = whole.json()["items"]
    pages = await _pages(client, path, headers)
    assert [len(page) for page in pages] == [2] * (count // 2) + ([count % 2] if count % 2 else [])
    # By identity: a field such as a session's last use may move between the requests.
    assert [_identity(item) for page in pages for item in page] == list(map(_identity, items))
    assert len(items) == count
    forged = await client.get(path, params={"cursor": "bm8tc3VjaC1wYWdl"}, headers=headers)
    assert forged.status_code == 404
    return items


async def test_members_and_professionals_come_by_name_as_people_read_names(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """Accents and case set aside: code points would put "Zé" before "ana" and "Álvaro" last."""
    owner = await make_member(db, role="owner", full_name="Mara Owner")
    for name, role in (("Zé", "owner"), ("bruno", "assistant"), ("Álvaro", "viewer")):
        await make_member(db, role=role, tenant_id=owner.tenant_id, full_name=name)
    await make_member(db, role="viewer", tenant_id=owner.tenant_id, full_name="ana")
    members = await _walks_the_whole_list(client, "/api/v1/tenant/members", owner.headers, 5)
    assert [member["full_name"] for member in members] == [
        "Álvaro", "ana", "bruno", "Mara Owner", "Zé",
    ]  # fmt: skip
    staff = await _walks_the_whole_list(client, "/api/v1/tenant/professionals", owner.headers, 2)
    assert [person["full_name"] for person in staff] == ["Mara Owner", "Zé"]
    first = await client.get("/api/v1/tenant/professionals?limit=1", headers=owner.headers)
    # Two professionals, so no default, whichever page is shown.
    assert first.json()["default_professional_id"] is None


async def test_api_keys_and_sessions_come_newest_first(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    names = [f"agent {n}" for n in range(3)]
    for name in names:
        await make_api_key(db, owner.tenant_id, ["patients:read"], name=name)
    keys = await _walks_the_whole_list(client, "/api/v1/api-keys", owner.headers, 3)
    assert [key["name"] for key in keys] == names[::-1]
    for _ in range(2):
        login = await client.post(
            "/api/v1/auth/login", json={"username": owner.email, "password": owner.password}
        )
        assert login.status_code == 200
    # The paging session was last used long ago: the first page's request touches it, which
    # must not move it past the cursor (it was skipped when sessions paged by last use).
    async with db.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(AuthSession).where(AuthSession.user_id == owner.user_id)
            .values(last_used_at=utcnow() - timedelta(minutes=5))
        )  # fmt: skip
    sessions = await _walks_the_whole_list(client, "/api/v1/auth/sessions", owner.headers, 3)
    created = [session["created_at"] for session in sessions]
    assert created == sorted(created, reverse=True)
    assert [session["current"] for session in sessions].count(True) == 1


async def test_invitations_and_plans_come_in_their_order(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    emails = [f"invitee{n}.{uuid.uuid4().hex[:6]}@example.com" for n in range(3)]
    for email in emails:
        sent = await client.post(
            "/api/v1/invitations", json={"email": email, "role": "assistant"},
            headers=owner.headers,
        )  # fmt: skip
        assert sent.status_code == 201, sent.text
    invitations = await _walks_the_whole_list(client, "/api/v1/invitations", owner.headers, 3)
    assert [invitation["email"] for invitation in invitations] == emails
    admin = await make_platform_admin(db)
    before = (await client.get("/api/v1/plans?limit=200", headers=admin.headers)).json()["items"]
    for name in ("zz Plan b", "zz plan á", "zz plan C"):
        created = await client.post("/api/v1/plans", json={"name": name}, headers=admin.headers)
        assert created.status_code == 201, created.text
    plans = await _walks_the_whole_list(client, "/api/v1/plans", admin.headers, len(before) + 3)
    listed = [plan["name"] for plan in plans]
    assert listed == sorted(listed, key=normalize)
    assert [name for name in listed if name.startswith("zz")] == [
        "zz plan á", "zz Plan b", "zz plan C",
    ]  # fmt: skip


async def test_records_and_status_history_come_oldest_first(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    for number in range(3):
        written = await client.post(
            f"/api/v1/patients/{patient}/records", json={"content": f"Session {number}"},
            headers=owner.headers,
        )  # fmt: skip
        assert written.status_code == 201, written.text
    path = f"/api/v1/patients/{patient}/records"
    records = await _walks_the_whole_list(client, path, owner.headers, 3)
    created = [record["created_at"] for record in records]
    assert created == sorted(created)
    appointment = (await book(client, owner, patient)).json()["id"]
    for status in ("confirmed", "arrived"):
        moved = await client.post(
            f"/api/v1/appointments/{appointment}/status", json={"status": status},
            headers=owner.headers,
        )  # fmt: skip
        assert moved.status_code == 200, moved.text
    history_path = f"/api/v1/appointments/{appointment}/history"
    history = await _walks_the_whole_list(client, history_path, owner.headers, 3)
    assert [change["to_status"] for change in history] == ["scheduled", "confirmed", "arrived"]


def test_every_list_in_the_document_takes_limit_and_cursor(db: FastAPI) -> None:
    """A list is an operation answering `next_cursor`; each must let the client page it."""
    document = db.openapi()
    schemas = document["components"]["schemas"]
    lists, unpaged = [], []
    for path, operations in document["paths"].items():
        operation = operations.get("get")
        if operation is None or "/fhir/" in path:
            continue
        content = operation["responses"].get("200", {}).get("content", {})
        reference = content.get("application/json", {}).get("schema", {}).get("$ref", "")
        schema = schemas.get(reference.rsplit("/", 1)[-1], {})
        if "next_cursor" not in schema.get("properties", {}):
            continue
        lists.append(path)
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if not {"limit", "cursor"} <= query:
            unpaged.append(path)
    assert len(lists) >= 20  # the check found the lists
    assert unpaged == []

"""Members of a practice: list, role change (audited), removal, never the last owner."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from clinicflow.audit.models import AuditEvent
from clinicflow.core.tenancy import set_session_tenant
from tests.factories import make_member

MEMBERS = "/api/v1/tenant/members"


async def test_owner_changes_a_role_and_it_is_audited(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    listed = await client.get(MEMBERS, headers=assistant.headers)
    assert listed.status_code == 200
    assert {m["role"] for m in listed.json()["items"]} == {"owner", "assistant"}
    changed = await client.patch(
        f"{MEMBERS}/{assistant.user_id}", json={"role": "viewer"}, headers=owner.headers
    )
    assert changed.status_code == 200
    assert changed.json()["role"] == "viewer"
    me = await client.get("/api/v1/auth/me", headers=assistant.headers)
    assert me.json()["role"] == "viewer"  # the role is read from the database on each request
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        event = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.action == "member.role_changed")
            )
        ).scalar_one()
    assert event.details == {"from": "assistant", "to": "viewer"}
    assert event.actor_user_id == owner.user_id


async def test_the_last_owner_cannot_be_demoted_or_removed(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    demote = await client.patch(
        f"{MEMBERS}/{owner.user_id}", json={"role": "assistant"}, headers=owner.headers
    )
    assert demote.status_code == 409
    assert "last owner" in demote.json()["detail"]
    remove = await client.delete(f"{MEMBERS}/{owner.user_id}", headers=owner.headers)
    assert remove.status_code == 409
    second = await make_member(db, role="owner", tenant_id=owner.tenant_id)
    assert (
        await client.delete(f"{MEMBERS}/{second.user_id}", headers=owner.headers)
    ).status_code == 204
    # A removed member's token acts in no practice: still their account, none of the practice.
    me = await client.get("/api/v1/auth/me", headers=second.headers)
    assert (me.status_code, me.json()["tenant_id"], me.json()["role"]) == (200, None, "none")
    assert (await client.get("/api/v1/patients", headers=second.headers)).status_code == 403


async def test_members_of_another_practice_are_404(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    stranger = await make_member(db, role="assistant")
    response = await client.patch(
        f"{MEMBERS}/{stranger.user_id}", json={"role": "viewer"}, headers=owner.headers
    )
    assert response.status_code == 404
    bad_role = await client.patch(
        f"{MEMBERS}/{owner.user_id}", json={"role": "superuser"}, headers=owner.headers
    )
    assert bad_role.status_code == 422


async def test_inviting_a_member_of_the_practice_is_refused_and_of_another_practice_is_not(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    elsewhere = await make_member(db, role="owner")
    again = await client.post(
        "/api/v1/invitations",
        json={"email": assistant.email, "role": "viewer"},
        headers=owner.headers,
    )
    assert again.status_code == 409
    assert "already a member" in again.json()["detail"]
    newcomer = await client.post(
        "/api/v1/invitations",
        json={"email": elsewhere.email, "role": "viewer"},
        headers=owner.headers,
    )
    assert newcomer.status_code == 201, newcomer.text

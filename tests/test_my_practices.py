"""GET /users/me/practices: every practice the caller belongs to, with role, and nobody else's."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from clinicflow.tenants.models import Role
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.service import add_member
from clinicflow.users.repository import UserRepository
from tests.factories import make_member


async def test_a_user_in_two_practices_sees_both_and_only_theirs(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner", email="two.homes@example.com")
    elsewhere = await make_member(db, role="owner")
    # The same person, a viewer in a second practice.
    await make_member(
        db, role="viewer", tenant_id=elsewhere.tenant_id, email="two.homes.b@example.com"
    )
    async with db.state.database.sessionmaker() as session, session.begin():
        user = await UserRepository(session).get(owner.user_id)
        second = await TenantRepository(session).get(elsewhere.tenant_id)  # type: ignore[arg-type]
        assert user is not None
        assert second is not None
        await add_member(session, second, user, Role.VIEWER)
    mine = await client.get("/api/v1/users/me/practices", headers=owner.headers)
    theirs = await client.get("/api/v1/users/me/practices", headers=elsewhere.headers)
    assert mine.status_code == 200
    assert {(p["tenant_id"], p["role"], p["is_default"]) for p in mine.json()["items"]} == {
        (str(owner.tenant_id), "owner", True),
        (str(elsewhere.tenant_id), "viewer", False),
    }
    assert [p["tenant_id"] for p in theirs.json()["items"]] == [str(elsewhere.tenant_id)]
    picked = await client.get(
        "/api/v1/auth/me", headers={**owner.headers, "X-Tenant-ID": str(elsewhere.tenant_id)}
    )
    assert picked.json()["role"] == "viewer"  # the listed id is what X-Tenant-ID takes

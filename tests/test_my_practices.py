"""GET /users/me/practices: every practice the caller belongs to, with role, and nobody else's."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from clinicflow.core.models import utcnow
from clinicflow.core.text import normalize
from clinicflow.tenants.models import Role, Tenant
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.service import add_member
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository
from tests.factories import make_member, make_platform_admin, make_tenant


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


async def test_practices_come_by_name_a_page_at_a_time(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    others = [await make_tenant(db, name) for name in ("zeta Clinic", "Álamo", "Mid Clinic")]
    async with db.state.database.sessionmaker() as session, session.begin():
        user = await UserRepository(session).get(owner.user_id)
        assert user is not None
        for tenant_id in others:
            tenant = await TenantRepository(session).get(tenant_id)
            assert tenant is not None
            await add_member(session, tenant, user, Role.VIEWER)
    path = "/api/v1/users/me/practices"
    first = (await client.get(path, params={"limit": "2"}, headers=owner.headers)).json()
    second = await client.get(
        path, params={"limit": "2", "cursor": first["next_cursor"]}, headers=owner.headers
    )
    whole = (await client.get(path, headers=owner.headers)).json()
    names = [practice["name"] for practice in whole["items"]]
    assert names == sorted(names, key=normalize)  # as people read names, accents aside
    assert names.index("Álamo") < names.index("Mid Clinic") < names.index("zeta Clinic")
    assert len(names) == 4
    assert whole["next_cursor"] is None
    assert [practice["name"] for practice in first["items"]] == names[:2]
    assert [practice["name"] for practice in second.json()["items"]] == names[2:]
    assert second.json()["next_cursor"] is None


async def test_after_a_practice_is_deleted_its_members_log_in_where_they_still_belong(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """The deleted practice is nobody's default any more: a member of another practice lands
    there, a member of none lands in no practice; both can use their account and log out."""
    admin = await make_platform_admin(db)
    owner = await make_member(db, role="owner", email="moves.on@example.com")
    solo = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    elsewhere = await make_member(db, role="owner")
    async with db.state.database.sessionmaker() as session, session.begin():
        user = await UserRepository(session).get(owner.user_id)
        second = await TenantRepository(session).get(elsewhere.tenant_id)  # type: ignore[arg-type]
        assert user is not None
        assert second is not None
        await add_member(session, second, user, Role.ASSISTANT)
    deleted = await client.delete(f"/api/v1/tenants/{owner.tenant_id}", headers=admin.headers)
    assert deleted.status_code == 204
    async with db.state.database.sessionmaker() as session:
        defaults = (
            await session.execute(
                select(User.default_tenant_id).where(User.id.in_([owner.user_id, solo.user_id]))
            )
        ).scalars()
        assert list(defaults) == [None, None]

    for member, landed, role in (
        (owner, str(elsewhere.tenant_id), "assistant"),
        (solo, None, "none"),
    ):
        login = await client.post(
            "/api/v1/auth/login", json={"username": member.email, "password": member.password}
        )
        assert login.status_code == 200
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        me = await client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        assert (me.json()["tenant_id"], me.json()["role"]) == (landed, role)
        for path in ("/api/v1/users/me", "/api/v1/auth/sessions"):
            assert (await client.get(path, headers=headers)).status_code == 200
        practices = await client.get("/api/v1/users/me/practices", headers=headers)
        assert [(p["tenant_id"], p["is_default"]) for p in practices.json()["items"]] == (
            [(landed, True)] if landed else []
        )
        assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204


async def test_a_login_repairs_a_default_practice_that_no_longer_exists(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """A default left pointing at a deleted practice (before deletions cleared it) does not
    trap the user: the login lands in no practice and clears it."""
    member = await make_member(db, role="owner")
    async with db.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(Tenant).where(Tenant.id == member.tenant_id).values(deleted_at=utcnow())
        )
    login = await client.post(
        "/api/v1/auth/login", json={"username": member.email, "password": member.password}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = await client.get("/api/v1/auth/me", headers=headers)
    assert (me.status_code, me.json()["tenant_id"]) == (200, None)
    async with db.state.database.sessionmaker() as session:
        user = await UserRepository(session).get(member.user_id)
        assert user is not None
        assert user.default_tenant_id is None


async def test_a_token_from_before_its_practice_was_deleted_still_reaches_the_account(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """Tokens issued in the practice live on for minutes: with the practice gone they act in
    no practice (profile, practices, logout work; the practice's data answers 403), while
    naming the gone practice with X-Tenant-ID is still a 403."""
    admin = await make_platform_admin(db)
    owner = await make_member(db, role="owner")
    deleted = await client.delete(f"/api/v1/tenants/{owner.tenant_id}", headers=admin.headers)
    assert deleted.status_code == 204
    me = await client.get("/api/v1/auth/me", headers=owner.headers)
    assert me.status_code == 200, me.text
    assert (me.json()["tenant_id"], me.json()["role"]) == (None, "none")
    assert (await client.get("/api/v1/users/me/practices", headers=owner.headers)).json()[
        "items"
    ] == []
    assert (await client.get("/api/v1/patients", headers=owner.headers)).status_code == 403
    named = await client.get(
        "/api/v1/auth/me", headers={**owner.headers, "X-Tenant-ID": str(owner.tenant_id)}
    )
    assert named.status_code == 403
    assert (await client.post("/api/v1/auth/logout", headers=owner.headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=owner.headers)).status_code == 401

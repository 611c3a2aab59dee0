"""The platform admin: practices, plans, read-only mode and plan limits; never clinical data."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI

from tests.factories import deliver_outbox, make_member, make_platform_admin, make_tenant
from tests.test_permission_matrix import ROUTE_RULES, ROUTES

TENANTS, PLANS = "/api/v1/tenants", "/api/v1/plans"


async def test_create_a_practice_and_invite_its_owner(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    admin = await make_platform_admin(db)
    created = await client.post(
        TENANTS,
        json={"name": "Clínica Sol", "owner_email": "dr.sol@example.com",
              "owner_full_name": "Dr Sol", "timezone": "America/Sao_Paulo"},
        headers=admin.headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    pending = await client.get(
        "/api/v1/invitations", params={"tenant_id": tenant_id}, headers=admin.headers
    )
    assert [(i["email"], i["role"]) for i in pending.json()["items"]] == [
        ("dr.sol@example.com", "owner")
    ]
    # The operator's grant is on the platform's own trail, not only the practice's.
    trail = await client.get(
        "/api/v1/audit-events", params={"action": "invitation.created"}, headers=admin.headers
    )
    granted = [
        e["details"] for e in trail.json()["items"] if e["details"]["tenant_id"] == tenant_id
    ]
    assert granted == [{"email": "dr.sol@example.com", "role": "owner", "tenant_id": tenant_id}]
    for zone in ("Nowhere/Land", "America", "a" * 300, "localtime"):  # 2nd, 3rd were 500s
        bad_zone = await client.post(
            TENANTS, json={"name": "X", "owner_email": "x@example.com", "owner_full_name": "X",
                           "timezone": zone}, headers=admin.headers,
        )  # fmt: skip
        assert bad_zone.status_code == 422, zone
        assert bad_zone.json()["errors"][0]["field"] == "timezone"
        moved = await client.patch(
            f"{TENANTS}/{tenant_id}", json={"timezone": zone}, headers=admin.headers
        )
        assert moved.status_code == 422, zone
    assert (await client.get(f"{TENANTS}/{tenant_id}", headers=admin.headers)).json()[
        "timezone"
    ] == "America/Sao_Paulo"
    listed = await client.get(TENANTS, params={"q": "sol"}, headers=admin.headers)
    assert [t["name"] for t in listed.json()["items"]] == ["Clínica Sol"]


async def test_list_counts_members_update_and_soft_delete(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    admin = await make_platform_admin(db)
    owner = await make_member(db, role="owner")
    await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    listed = await client.get(TENANTS, headers=admin.headers)
    counts = {t["id"]: t["member_count"] for t in listed.json()["items"]}
    assert counts[str(owner.tenant_id)] == 2
    path = f"{TENANTS}/{owner.tenant_id}"
    one = await client.get(path, headers=admin.headers)
    renamed = await client.patch(path, json={"name": "New Name"}, headers=admin.headers)
    assert renamed.json()["name"] == "New Name"
    locked = await client.put(f"{path}/read-only", json={"enabled": True}, headers=admin.headers)
    # One practice answers with the same member count as the list, whichever route answers.
    assert [r.json()["member_count"] for r in (one, renamed, locked)] == [2, 2, 2]
    assert (await client.delete(path, headers=admin.headers)).status_code == 204
    assert (await client.get(path, headers=admin.headers)).status_code == 404
    assert (await client.get("/api/v1/tenant/members", headers=owner.headers)).status_code == 403
    assert (await client.get(f"{TENANTS}/{uuid.uuid4()}", headers=admin.headers)).status_code == 404


async def test_plans_and_the_member_limit(client: httpx.AsyncClient, db: FastAPI) -> None:
    admin = await make_platform_admin(db)
    plan = await client.post(
        PLANS, json={"name": "Duo", "max_members": 2, "api_access": True}, headers=admin.headers
    )
    assert plan.status_code == 201
    duplicate = await client.post(PLANS, json={"name": "Duo"}, headers=admin.headers)
    assert duplicate.status_code == 409
    owner = await make_member(db, role="owner")
    assigned = await client.put(
        f"{TENANTS}/{owner.tenant_id}/plan",
        json={"plan_id": plan.json()["id"]},
        headers=admin.headers,
    )
    assert assigned.json()["plan_id"] == plan.json()["id"]
    invited = await client.post(
        "/api/v1/invitations",
        json={"email": "third@example.com", "role": "viewer"},
        headers=owner.headers,
    )
    assert invited.status_code == 201  # room for a second member when invited
    await deliver_outbox(db)
    token = db.state.mailer.latest("third@example.com").text.split("token=")[1].split()[0]
    await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    full = await client.post(
        "/api/v1/invitations",
        json={"email": "fourth@example.com", "role": "viewer"},
        headers=owner.headers,
    )
    assert full.status_code == 402  # refused before anyone chooses a password
    assert full.json()["limit"] == "max_members"
    refused = await client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": "k9#vQ2pX-third", "full_name": "Third"},
    )
    assert refused.status_code == 402
    assert "at most 2 members" in refused.json()["detail"]
    raised = await client.patch(
        f"{PLANS}/{plan.json()['id']}", json={"max_members": 3}, headers=admin.headers
    )
    assert raised.json()["max_members"] == 3
    accepted = await client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": "k9#vQ2pX-third", "full_name": "Third"},
    )
    assert accepted.status_code == 200  # the refused attempt did not spend the invitation


# Revoking a credential takes power away: a security action read-only mode lets through.
CREDENTIAL_REVOCATIONS = {
    ("DELETE", "/api/v1/api-keys/{key_id}"),
    ("DELETE", "/api/v1/calendar/token"),
    ("DELETE", "/api/v1/invitations/{invitation_id}"),
}


def _tenant_write_routes() -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path in ROUTES
        if method != "GET"
        and ROUTE_RULES[(method, path)] not in ("public", "authenticated")
        and not _platform_only(ROUTE_RULES[(method, path)])
        and (method, path) not in CREDENTIAL_REVOCATIONS
    ]


def _platform_only(rule: object) -> bool:
    """Routes only the platform admin may call (who belongs to no practice)."""
    return all(str(p).startswith("platform:") for p in _permissions(rule))


def _permissions(rule: object) -> list[object]:
    return list(rule) if isinstance(rule, frozenset) else [rule]


async def test_read_only_practice_refuses_every_write_but_reads(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    admin = await make_platform_admin(db)
    owner, other = await make_member(db, role="owner"), await make_member(db, role="owner")
    switched = await client.put(
        f"{TENANTS}/{owner.tenant_id}/read-only", json={"enabled": True}, headers=admin.headers
    )
    assert switched.json()["read_only"] is True
    routes = _tenant_write_routes()
    assert len(routes) >= 20  # enumerated from the OpenAPI document, not listed by hand
    for method, path in routes:
        url = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)
        response = await client.request(method, url, json={}, headers=owner.headers)
        assert response.status_code == 423, (method, path, response.text)
        assert "read-only" in response.json()["detail"]
    assert (await client.get("/api/v1/tenant/members", headers=owner.headers)).status_code == 200
    assert (await client.get("/api/v1/patients", headers=owner.headers)).status_code == 200
    unaffected = await client.post(
        "/api/v1/patients", json={"full_name": "Fine"}, headers=other.headers
    )
    assert unaffected.status_code == 201
    await client.put(
        f"{TENANTS}/{owner.tenant_id}/read-only", json={"enabled": False}, headers=admin.headers
    )
    assert (
        await client.post("/api/v1/patients", json={"full_name": "Back"}, headers=owner.headers)
    ).status_code == 201


async def test_a_read_only_practice_takes_no_new_member(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """Accepting an invitation writes a membership (and maybe an account) into the practice;
    the platform admin's invitation is a write to it too: both 423 while read-only."""
    admin = await make_platform_admin(db)
    owner = await make_member(db, role="owner")
    invited = await client.post(
        "/api/v1/invitations",
        json={"email": "late@example.com", "role": "assistant"},
        headers=owner.headers,
    )
    assert invited.status_code == 201
    await deliver_outbox(db)
    token = db.state.mailer.latest("late@example.com").text.split("token=")[1].split()[0]
    ownerless = await make_tenant(db)
    for tenant_id in (owner.tenant_id, ownerless):
        locked = await client.put(
            f"{TENANTS}/{tenant_id}/read-only", json={"enabled": True}, headers=admin.headers
        )
        assert locked.status_code == 200
    body = {"token": token, "password": "k9#vQ2pX-late-one", "full_name": "Late One"}
    refused = await client.post("/api/v1/invitations/accept", json=body)
    assert refused.status_code == 423, refused.text
    assert "read-only" in refused.json()["detail"]
    # Nothing changed: the invitation is still pending, no account, no member.
    pending = await client.get(
        "/api/v1/invitations", params={"tenant_id": str(owner.tenant_id)}, headers=admin.headers
    )
    assert [i["email"] for i in pending.json()["items"]] == ["late@example.com"]
    assert (await client.get(f"/api/v1/invitations/{token}")).status_code == 200
    login = await client.post(
        "/api/v1/auth/login", json={"username": "late@example.com", "password": body["password"]}
    )
    assert login.status_code == 401
    members = await client.get("/api/v1/tenant/members", headers=owner.headers)
    assert [m["email"] for m in members.json()["items"]] == [owner.email]
    by_admin = await client.post(
        "/api/v1/invitations",
        json={"email": "first.owner@example.com", "role": "owner", "tenant_id": str(ownerless)},
        headers=admin.headers,
    )
    assert by_admin.status_code == 423, by_admin.text
    assert "read-only" in by_admin.json()["detail"]
    nothing = await client.get(
        "/api/v1/invitations", params={"tenant_id": str(ownerless)}, headers=admin.headers
    )
    assert nothing.json()["items"] == []

    await client.put(
        f"{TENANTS}/{owner.tenant_id}/read-only", json={"enabled": False}, headers=admin.headers
    )
    accepted = await client.post("/api/v1/invitations/accept", json=body)
    assert accepted.status_code == 200, accepted.text


async def test_platform_admins_and_plans_are_created_and_changed_on_the_record(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """Granting the platform's highest role and changing the limits every practice on a plan
    lives by are platform events: each is on the platform chain, with who did it."""
    admin = await make_platform_admin(db)
    created = await client.post(
        "/api/v1/users",
        json={"email": "second.admin@example.com", "password": "k9#vQ2pX-operator",
              "full_name": "Second Admin", "is_platform_admin": True},
        headers=admin.headers,
    )  # fmt: skip
    assert created.status_code == 201
    plan = await client.post(
        PLANS, json={"name": "Solo", "max_members": 1, "api_access": False}, headers=admin.headers
    )
    assert plan.status_code == 201
    changed = await client.patch(
        f"{PLANS}/{plan.json()['id']}", json={"max_members": 3}, headers=admin.headers
    )
    assert changed.status_code == 200

    async def events(action: str) -> list[dict[str, object]]:
        answer = await client.get(
            "/api/v1/audit-events", params={"action": action}, headers=admin.headers
        )
        assert answer.status_code == 200
        return list(answer.json()["items"])

    [user_created] = await events("user.created")
    assert user_created["actor_user_id"] == str(admin.user_id)
    assert (user_created["subject_type"], user_created["subject_id"]) == (
        "user", created.json()["id"],
    )  # fmt: skip
    assert user_created["details"]["is_platform_admin"] is True  # type: ignore[index]
    [plan_created] = await events("plan.created")
    assert (plan_created["subject_id"], plan_created["actor_user_id"]) == (
        plan.json()["id"], str(admin.user_id),
    )  # fmt: skip
    assert plan_created["details"] == {
        "name": "Solo", "max_patients": None, "max_members": 1, "api_access": False,
    }  # fmt: skip
    [plan_updated] = await events("plan.updated")
    assert plan_updated["subject_id"] == plan.json()["id"]
    assert plan_updated["details"] == {"from": {"max_members": 1}, "to": {"max_members": 3}}


async def test_a_read_only_practice_can_still_revoke_its_credentials(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """A leaked API key or feed URL must be stoppable while the practice is read-only (e.g.
    unpaid), like a session: revoking answers 204 and the credential stops working; issuing
    and rotating stay refused."""
    admin = await make_platform_admin(db)
    owner = await make_member(db, role="owner")
    key = await client.post(
        "/api/v1/api-keys", json={"name": "bot", "scopes": ["patients:read"]},
        headers=owner.headers,
    )  # fmt: skip
    feed = await client.post("/api/v1/calendar/token", headers=owner.headers)
    invited = await client.post(
        "/api/v1/invitations", json={"email": "new@example.com", "role": "assistant"},
        headers=owner.headers,
    )  # fmt: skip
    assert (key.status_code, feed.status_code, invited.status_code) == (201, 201, 201)
    other_device = await client.post(
        "/api/v1/auth/login", json={"username": owner.email, "password": owner.password}
    )
    other_headers = {"Authorization": f"Bearer {other_device.json()['access_token']}"}
    locked = await client.put(
        f"{TENANTS}/{owner.tenant_id}/read-only", json={"enabled": True}, headers=admin.headers
    )
    assert locked.json()["read_only"] is True
    for route in CREDENTIAL_REVOCATIONS:
        assert route in ROUTES  # the set names live routes

    key_id, secret = key.json()["id"], key.json()["key"]
    feed_url = feed.json()["url"].removeprefix("http://testserver")
    # Both still work for reads, which read-only mode keeps.
    assert (await client.get("/api/v1/patients", headers={"X-API-Key": secret})).status_code == 200
    assert (await client.get(feed_url)).status_code == 200
    rotate = await client.post(
        f"/api/v1/api-keys/{key_id}/rotate", json={"grace_seconds": 0}, headers=owner.headers
    )
    assert rotate.status_code == 423
    revoked = await client.delete(f"/api/v1/api-keys/{key_id}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text
    assert (await client.get("/api/v1/patients", headers={"X-API-Key": secret})).status_code == 401
    assert (await client.get("/api/v1/api-keys", headers=owner.headers)).json()["items"] == []
    unfed = await client.delete("/api/v1/calendar/token", headers=owner.headers)
    assert unfed.status_code == 204, unfed.text
    assert (await client.get(feed_url)).status_code == 404
    withdrawn = await client.delete(
        f"/api/v1/invitations/{invited.json()['id']}", headers=owner.headers
    )
    assert withdrawn.status_code == 204, withdrawn.text
    assert (await client.get("/api/v1/invitations", headers=owner.headers)).json()["items"] == []
    sessions = await client.get("/api/v1/auth/sessions", headers=owner.headers)
    [other] = [item["id"] for item in sessions.json()["items"] if not item["current"]]
    ended = await client.delete(f"/api/v1/auth/sessions/{other}", headers=owner.headers)
    assert ended.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=other_headers)).status_code == 401
    audited = await client.get(
        "/api/v1/audit-events", params={"action": "api_key.revoked"}, headers=owner.headers
    )
    assert [event["subject_id"] for event in audited.json()["items"]] == [key_id]
    assert (await client.post("/api/v1/auth/logout", headers=owner.headers)).status_code == 204

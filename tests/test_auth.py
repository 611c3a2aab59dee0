"""Login, rotation with reuse detection, sessions, token validation, lockout, password rules."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from clinicflow.audit.models import AuditEvent
from clinicflow.bootstrap import calibrate_failed_logins
from clinicflow.core import security
from clinicflow.core.security import PasswordHasher
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.tenants.models import Role
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.service import add_member
from clinicflow.users.repository import UserRepository
from tests import documented_statuses
from tests.factories import DEFAULT_PASSWORD, Member, make_member, make_platform_admin
from tests.statements import statements_sent

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/auth/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, member: Member, password: str | None = None) -> dict:
    response = await client.post(
        LOGIN, json={"username": member.email, "password": password or member.password}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=documented_statuses.recording(app), client=(ip, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_login_returns_a_bearer_pair(client: httpx.AsyncClient, db: FastAPI) -> None:
    member = await make_member(db, role="assistant")
    body = await login(client, member)
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.json()["role"] == "assistant"
    assert me.json()["tenant_id"] == str(member.tenant_id)
    assert "records:read" not in me.json()["permissions"]


async def test_login_by_email_is_case_insensitive_and_form_login_works(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    upper = await client.post(
        LOGIN, json={"username": member.email.upper(), "password": member.password}
    )
    assert upper.status_code == 200
    form = await client.post(
        "/api/v1/auth/token", data={"username": member.email, "password": member.password}
    )
    assert form.status_code == 200
    assert form.json()["token_type"] == "bearer"


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    first = await login(client, member)
    second = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    # The family's current token and access token died with it.
    current = await client.post(REFRESH, json={"refresh_token": second.json()["refresh_token"]})
    assert current.status_code == 401
    assert (await client.get(ME, headers=bearer(second.json()["access_token"]))).status_code == 401
    audit = await _audit_actions(db, member)
    assert "auth.refresh_token_reuse" in audit


async def test_concurrent_refreshes_with_one_token_give_at_most_one_pair(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    token = (await login(client, member))["refresh_token"]
    responses = await asyncio.gather(
        *(client.post(REFRESH, json={"refresh_token": token}) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses).count(200) <= 1
    assert all(r.status_code in (200, 401) for r in responses)


async def test_sessions_list_revoke_logout_and_logout_all(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    phone = await login(client, member)
    laptop = await login(client, member)
    listed = await client.get("/api/v1/auth/sessions", headers=bearer(laptop["access_token"]))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 3  # the factory's session, phone and laptop
    assert sum(item["current"] for item in items) == 1
    assert items[0]["ip"] == "203.0.113.10"
    phone_id = await _session_id(client, phone)
    revoked = await client.delete(
        f"/api/v1/auth/sessions/{phone_id}", headers=bearer(laptop["access_token"])
    )
    assert revoked.status_code == 204
    assert (await client.get(ME, headers=bearer(phone["access_token"]))).status_code == 401
    dead = await client.post(REFRESH, json={"refresh_token": phone["refresh_token"]})
    assert dead.status_code == 401
    assert (await client.get(ME, headers=bearer(laptop["access_token"]))).status_code == 200

    logout = await client.post("/api/v1/auth/logout", headers=bearer(laptop["access_token"]))
    assert logout.status_code == 204
    assert (await client.get(ME, headers=bearer(laptop["access_token"]))).status_code == 401
    assert (await client.get(ME, headers=member.headers)).status_code == 200

    tablet = await login(client, member)
    everywhere = await client.post(
        "/api/v1/auth/logout-all", headers=bearer(tablet["access_token"])
    )
    assert everywhere.status_code == 204
    for token in (member.access_token, tablet["access_token"]):
        assert (await client.get(ME, headers=bearer(token))).status_code == 401
    stale = await client.post(REFRESH, json={"refresh_token": member.refresh_token})
    assert stale.status_code == 401


async def _session_id(client: httpx.AsyncClient, pair: dict) -> str:
    listed = await client.get("/api/v1/auth/sessions", headers=bearer(pair["access_token"]))
    return str(next(item["id"] for item in listed.json()["items"] if item["current"]))


async def test_revoking_someone_elses_session_is_404(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    alice, bob = await make_member(db), await make_member(db)
    bob_session = await _session_id(client, {"access_token": bob.access_token})
    response = await client.delete(f"/api/v1/auth/sessions/{bob_session}", headers=alice.headers)
    assert response.status_code == 404
    assert (await client.get(ME, headers=bob.headers)).status_code == 200


def _forge(settings: object, **changes: object) -> str:
    key = settings.secret_key.get_secret_value()  # type: ignore[attr-defined]
    decoded = jwt.decode(
        changes.pop("token"),  # type: ignore[arg-type]
        key,
        algorithms=["HS256"],
        audience=settings.jwt_audience,  # type: ignore[attr-defined]
    )
    header = {"kid": jwt.get_unverified_header(str(changes.pop("header_from")))["kid"]}
    algorithm = str(changes.pop("alg", "HS256"))
    sign_key = str(changes.pop("key", key))
    decoded.update(changes)
    return jwt.encode(decoded, sign_key, algorithm=algorithm, headers=header)


@pytest.mark.parametrize(
    "forgery",
    [
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"exp": int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())},
        {"typ": "refresh"},
        {"key": "a-different-secret-key-of-sufficient-length"},
        {"role": "owner", "key": "wrong-key-trying-to-escalate-its-privileges"},
    ],
    ids=["wrong-aud", "wrong-iss", "expired", "wrong-typ", "wrong-signature", "forged-role"],
)
async def test_tampered_access_tokens_are_refused(
    client: httpx.AsyncClient, db: FastAPI, forgery: dict
) -> None:
    member = await make_member(db)
    token = _forge(
        db.state.settings, token=member.access_token, header_from=member.access_token, **forgery
    )
    response = await client.get(ME, headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_alg_none_and_garbage_tokens_are_refused(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    claims = jwt.decode(member.access_token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    for token in (unsigned, "not-a-jwt", member.refresh_token):
        assert (await client.get(ME, headers=bearer(token))).status_code == 401
    as_refresh = await client.post(REFRESH, json={"refresh_token": member.access_token})
    assert as_refresh.status_code == 401


async def test_database_holds_no_plaintext_password_or_refresh_token(
    client: httpx.AsyncClient, db: FastAPI, admin_engine: AsyncEngine
) -> None:
    member = await make_member(db)
    pair = await login(client, member)
    async with admin_engine.connect() as connection:
        rows: list[str] = []
        for table in ("users", "auth_sessions", "refresh_tokens", "audit_events"):
            result = await connection.execute(text(f"SELECT row_to_json(t)::text FROM {table} t"))
            rows += result.scalars()
        dump = " ".join(rows)
        stored_hash = (
            await connection.execute(
                text("SELECT password_hash FROM users WHERE id = :id"), {"id": member.user_id}
            )
        ).scalar_one()
    assert member.password not in dump
    assert pair["refresh_token"] not in dump
    assert member.refresh_token not in dump
    assert stored_hash.startswith("$argon2id$")


async def store_hash(db: FastAPI, member: Member, password_hash: str) -> None:
    """As if the member's password had been hashed at another cost."""
    async with db.state.database.sessionmaker() as session, session.begin():
        user = await UserRepository(session).get(member.user_id)
        assert user is not None
        user.password_hash = password_hash


async def test_outdated_hash_parameters_are_upgraded_on_login(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    old = await PasswordHasher(memory_kib=2048, time_cost=2, parallelism=4).hash(member.password)
    await store_hash(db, member, old)
    await login(client, member)
    async with db.state.database.sessionmaker() as session:
        user = await UserRepository(session).get(member.user_id)
        assert user is not None
        assert user.password_hash != old
        assert "m=1024,t=1,p=1" in user.password_hash


async def _fastest_failure(hasher: PasswordHasher, stored: str | None) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        assert not (await hasher.verify("not-the-password", stored)).valid
        times.append(time.perf_counter() - started)
    return min(times)


async def test_after_a_cost_change_an_unknown_user_fails_as_slowly_as_an_old_hash(
    db: FastAPI,
) -> None:
    """Stored hashes keep their old cost until their user's next login: without holding
    failures to the slowest cost stored, a wrong password for such an account would answer in
    the old cost's time and an unknown address in the new one's, telling which accounts exist."""
    member = await make_member(db)
    old = await PasswordHasher(memory_kib=16384, time_cost=3).hash(member.password)
    await store_hash(db, member, old)
    hasher = PasswordHasher(memory_kib=1024, time_cost=1)  # the configured, cheaper cost
    await calibrate_failed_logins(db.state.database, hasher)

    assert hasher.failure_floor > 0
    known_old = await _fastest_failure(hasher, old)
    unknown = await _fastest_failure(hasher, None)
    current = await _fastest_failure(hasher, await hasher.hash("another-password-9"))
    assert unknown >= hasher.failure_floor
    assert current >= hasher.failure_floor
    # Half, not equal: the floor was timed at calibration and the machine's speed drifts
    # (tests run in parallel); without the floor an unknown user fails many times faster.
    assert unknown >= 0.5 * known_old
    assert (await hasher.verify(member.password, old)).valid  # success is never held
    await store_hash(db, member, await hasher.hash(member.password))  # later apps calibrate


async def test_with_one_cost_stored_failures_are_not_held() -> None:
    hasher = PasswordHasher(memory_kib=1024, time_cost=1)
    await hasher.calibrate([await hasher.hash("some-password-1"), await hasher.hash("other-2")])
    assert hasher.failure_floor == 0.0


async def test_lockout_after_five_failures_from_several_ips_then_admin_unlock(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    for attempt in range(5):
        async with client_from(db, f"198.51.100.{attempt + 1}") as other:
            failed = await other.post(
                LOGIN, json={"username": member.email, "password": "wrong-pw"}
            )
            assert failed.status_code == 401
    locked = await client.post(LOGIN, json={"username": member.email, "password": member.password})
    unknown = await client.post(LOGIN, json={"username": "nobody@example.com", "password": "x" * 9})
    wrong = await client.post(LOGIN, json={"username": member.email, "password": "wrong-pw"})
    assert locked.status_code == unknown.status_code == wrong.status_code == 401
    assert locked.json() == unknown.json() == wrong.json()
    assert "auth.locked" in await _audit_actions(db, member)

    admin = await make_platform_admin(db)
    unlocked = await client.post(f"/api/v1/users/{member.user_id}/unlock", headers=admin.headers)
    assert unlocked.status_code == 204
    await login(client, member)


async def test_password_length_bounds_and_common_passwords(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    admin = await make_platform_admin(db)

    async def create(password: str) -> httpx.Response:
        body = {
            "email": f"{uuid.uuid4().hex[:8]}@example.com",
            "password": password,
            "full_name": "P",
        }
        return await client.post("/api/v1/users", json=body, headers=admin.headers)

    assert (await create("k9#vQ2pX")).status_code == 201
    assert (await create("Zq7!" + "x8Lm" * 31)).status_code == 201  # 128 characters
    for weak in ("password1", "12345678", "short7!"):
        refused = await create(weak)
        assert refused.status_code == 422, weak
        assert refused.json()["errors"][0]["field"] == "password"
    assert (await create("Zq7!" + "x8Lm" * 31 + "q")).status_code == 422  # 129 characters


async def test_change_password_revokes_other_sessions_only(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    other = await login(client, member)
    changed = await client.post(
        "/api/v1/users/me/change-password",
        json={"current_password": member.password, "new_password": "a-brand-new-passphrase"},
        headers=member.headers,
    )
    assert changed.status_code == 204
    assert (await client.get(ME, headers=member.headers)).status_code == 200
    assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 401
    await login(client, member, "a-brand-new-passphrase")
    wrong = await client.post(
        "/api/v1/users/me/change-password",
        json={"current_password": "not-it", "new_password": "another-new-passphrase"},
        headers=member.headers,
    )
    assert wrong.status_code == 403  # a wrong credential, not malformed input


async def test_a_weak_new_password_is_reported_under_new_password(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    weak = await client.post(
        "/api/v1/users/me/change-password",
        json={"current_password": member.password, "new_password": "password"},
        headers=member.headers,
    )
    assert weak.status_code == 422
    assert [error["field"] for error in weak.json()["errors"]] == ["new_password"]


async def test_wrong_current_passwords_count_as_failed_logins_and_lock_the_account(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """A stolen access token cannot guess the password through change-password: each wrong
    current password is a failed login of the account, and the fifth locks it, for login and
    for change-password alike (even with the right password)."""
    member = await make_member(db)
    change = "/api/v1/users/me/change-password"
    for _ in range(5):
        wrong = await client.post(
            change,
            json={"current_password": "not-it-at-all", "new_password": "another-new-passphrase"},
            headers=member.headers,
        )
        assert wrong.status_code == 403
    actions = await _audit_actions(db, member)
    assert actions.count("auth.login_failed") == 5
    assert actions.count("auth.locked") == 1
    refused = await client.post(
        change,
        json={"current_password": member.password, "new_password": "another-new-passphrase"},
        headers=member.headers,
    )
    assert refused.status_code == 403
    assert "locked" in refused.json()["detail"]
    locked_login = await client.post(
        LOGIN, json={"username": member.email, "password": member.password}
    )
    assert locked_login.status_code == 401
    admin = await make_platform_admin(db)
    shown = await client.get(f"/api/v1/users/{member.user_id}", headers=admin.headers)
    assert shown.json()["locked_until"] is not None
    unlocked = await client.post(f"/api/v1/users/{member.user_id}/unlock", headers=admin.headers)
    assert unlocked.status_code == 204
    changed = await client.post(
        change,
        json={"current_password": member.password, "new_password": "another-new-passphrase"},
        headers=member.headers,
    )
    assert changed.status_code == 204
    await login(client, member, "another-new-passphrase")


async def test_a_right_current_password_clears_the_failure_count(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    for _ in range(4):
        wrong = await client.post(LOGIN, json={"username": member.email, "password": "nope-nope"})
        assert wrong.status_code == 401
    changed = await client.post(
        "/api/v1/users/me/change-password",
        json={"current_password": member.password, "new_password": "another-new-passphrase"},
        headers=member.headers,
    )
    assert changed.status_code == 204
    wrong = await client.post(LOGIN, json={"username": member.email, "password": "nope-nope"})
    assert wrong.status_code == 401
    assert "auth.locked" not in await _audit_actions(db, member)


async def test_users_me_read_and_update(client: httpx.AsyncClient, db: FastAPI) -> None:
    member = await make_member(db, full_name="Old Name")
    updated = await client.put(
        "/api/v1/users/me",
        json={"full_name": "New Name", "username": "Dr.New"},
        headers=member.headers,
    )
    assert updated.status_code == 200
    assert updated.json()["username"] == "dr.new"
    me = await client.get("/api/v1/users/me", headers=member.headers)
    assert me.json()["full_name"] == "New Name"
    assert "password_hash" not in me.json()
    by_username = await client.post(
        LOGIN, json={"username": "DR.NEW", "password": DEFAULT_PASSWORD}
    )
    assert by_username.status_code == 200


async def test_platform_admin_manages_accounts(client: httpx.AsyncClient, db: FastAPI) -> None:
    admin = await make_platform_admin(db)
    member = await make_member(db)
    listed = await client.get("/api/v1/users?limit=1", headers=admin.headers)
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 1
    second = await client.get(
        f"/api/v1/users?limit=1&cursor={listed.json()['next_cursor']}", headers=admin.headers
    )
    assert second.json()["items"][0]["id"] != listed.json()["items"][0]["id"]
    got = await client.get(f"/api/v1/users/{member.user_id}", headers=admin.headers)
    assert got.json()["email"] == member.email
    deleted = await client.delete(f"/api/v1/users/{member.user_id}", headers=admin.headers)
    assert deleted.status_code == 204
    assert (await client.get(ME, headers=member.headers)).status_code == 401
    refused = await client.post(LOGIN, json={"username": member.email, "password": member.password})
    assert refused.status_code == 401
    missing = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=admin.headers)
    assert missing.status_code == 404
    bad_cursor = await client.get("/api/v1/users?cursor=%%%", headers=admin.headers)
    assert bad_cursor.status_code == 422  # not even shaped like a cursor


async def test_x_tenant_id_must_be_one_of_the_callers_practices(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    member = await make_member(db)
    stranger = await make_member(db)
    other = await client.get(ME, headers={**member.headers, "X-Tenant-ID": str(stranger.tenant_id)})
    assert other.status_code == 403
    garbage = await client.get(ME, headers={**member.headers, "X-Tenant-ID": "nope"})
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["field"] == "x-tenant-id"
    second_home = await make_member(db, tenant_id=stranger.tenant_id, role="viewer")
    # A user in two practices: the same person, picking the second one with the header.
    both = await make_member(db, role="owner", email=f"both-{uuid.uuid4().hex[:6]}@example.com")
    async with db.state.database.sessionmaker() as session, session.begin():
        user = await UserRepository(session).get(both.user_id)
        tenant = await TenantRepository(session).get(second_home.tenant_id)  # type: ignore[arg-type]
        assert user is not None
        assert tenant is not None
        await add_member(session, tenant, user, Role.VIEWER)
    picked = await client.get(ME, headers={**both.headers, "X-Tenant-ID": str(tenant.id)})
    assert picked.status_code == 200
    assert picked.json()["role"] == "viewer"
    assert (await client.get(ME, headers=both.headers)).json()["role"] == "owner"


async def _audit_actions(db: FastAPI, member: Member) -> list[str]:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, member.tenant_id)
        rows = await session.execute(select(AuditEvent.action).order_by(AuditEvent.seq))
        return list(rows.scalars())


async def test_password_hashing_runs_below_request_handling_priority() -> None:
    """Logins queue behind reads: argon2 runs in one thread per process at nice +10 on Linux
    (the lane threads it starts inherit that), never in the pool that serves other work."""

    def niceness_and_thread() -> tuple[int, str]:
        niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return niceness, threading.current_thread().name

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    niceness, name = await security._hashing_thread(niceness_and_thread)
    lowered = min(19, base + security._HASHING_NICENESS)
    assert niceness == (lowered if sys.platform.startswith("linux") else base)
    assert name.startswith("argon2")
    hasher = PasswordHasher(memory_kib=1024, time_cost=1)
    assert (await hasher.verify("violet-harbor-71", await hasher.hash("violet-harbor-71"))).valid


async def test_a_login_enters_its_practice_once(client: httpx.AsyncClient, db: FastAPI) -> None:
    """The landing check and the login's own writes run in the practice the user lands in
    without switching the setting away and back: it is set once, by the BEGIN of the
    transaction after the password check, and never set back (a login once sent four settings,
    a round trip each)."""
    owner = await make_member(db, role="owner")
    with statements_sent(db) as sent:
        response = await client.post(
            "/api/v1/auth/login", json={"username": owner.email, "password": owner.password}
        )
        await asyncio.sleep(0.05)  # the driver reports its own statements a moment later
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["tid"] == str(owner.tenant_id)
    settings = [statement for statement in sent if "set_config" in statement]
    assert len(settings) == 1
    assert settings[0].startswith("BEGIN")


async def test_no_database_connection_is_held_while_a_password_is_checked(
    client: httpx.AsyncClient, db: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 takes tens of milliseconds, longer under load: a login (or a change of password)
    that kept its pooled connection meanwhile let a burst of logins, or a password-guessing
    run, hold every connection the other requests wait for."""
    member = await make_member(db)
    pool = db.state.database.engine.pool
    hasher = db.state.password_hasher
    verify = hasher.verify
    held: list[int] = []

    async def watched(password: str, stored_hash: str | None) -> security.VerifyResult:
        held.append(pool.checkedout())
        return await verify(password, stored_hash)

    monkeypatch.setattr(hasher, "verify", watched)
    right = await client.post(LOGIN, json={"username": member.email, "password": member.password})
    wrong = await client.post(LOGIN, json={"username": member.email, "password": "wrong-pw"})
    unknown = await client.post(LOGIN, json={"username": "nobody@example.com", "password": "x" * 9})
    guessed = await client.post(
        "/api/v1/users/me/change-password",
        json={"current_password": "wrong-pw", "new_password": "another-new-passphrase"},
        headers=member.headers,
    )
    assert (right.status_code, wrong.status_code, unknown.status_code) == (200, 401, 401)
    assert guessed.status_code == 403
    assert held == [0, 0, 0, 0]


def replace_password_after_next_check(
    db: FastAPI, member: Member, new_password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next password check is followed, before its request goes on, by another device
    storing `new_password`: the race a check outside the request's transaction opens."""
    hasher = db.state.password_hasher
    verify = hasher.verify

    async def replaced_meanwhile(password: str, stored_hash: str | None) -> security.VerifyResult:
        result = await verify(password, stored_hash)
        monkeypatch.setattr(hasher, "verify", verify)  # once
        await store_hash(db, member, await hasher.hash(new_password))
        return result

    monkeypatch.setattr(hasher, "verify", replaced_meanwhile)


async def test_a_password_changed_while_a_login_checks_the_old_one_refuses_the_old_one(
    client: httpx.AsyncClient, db: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs outside the login's transaction, so the account may change meanwhile:
    the password is checked again against what is stored once the row is locked."""
    member = await make_member(db)
    new_password = "amber-lantern-58"
    replace_password_after_next_check(db, member, new_password, monkeypatch)
    refused = await client.post(LOGIN, json={"username": member.email, "password": member.password})
    assert refused.status_code == 401
    async with db.state.database.sessionmaker() as session:
        user = await UserRepository(session).get(member.user_id)
        assert user is not None
        assert user.failed_login_count == 1  # a wrong password for the account as it is
    assert (await _audit_actions(db, member))[-1] == "auth.login_failed"
    await login(client, member, new_password)


async def test_two_logins_that_upgrade_the_same_old_hash_both_succeed(
    db: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both check the password against the old-cost hash before either locks the row; the
    first stores the upgraded hash, which the second then finds changed: it checks again
    rather than refusing a right password."""
    member = await make_member(db)
    old = await PasswordHasher(memory_kib=2048, time_cost=2, parallelism=4).hash(member.password)
    await store_hash(db, member, old)
    hasher = db.state.password_hasher
    verify = hasher.verify
    both_checked = asyncio.Barrier(2)
    checks = 0

    async def in_step(password: str, stored_hash: str | None) -> security.VerifyResult:
        nonlocal checks
        checks += 1
        result = await verify(password, stored_hash)
        if checks <= 2:
            await both_checked.wait()
        return result

    monkeypatch.setattr(hasher, "verify", in_step)
    async with client_from(db, "198.51.100.7") as first, client_from(db, "198.51.100.8") as second:
        body = {"username": member.email, "password": member.password}
        answers = await asyncio.gather(first.post(LOGIN, json=body), second.post(LOGIN, json=body))
    assert [answer.status_code for answer in answers] == [200, 200]
    async with db.state.database.sessionmaker() as session:
        user = await UserRepository(session).get(member.user_id)
        assert user is not None
        assert "m=1024,t=1,p=1" in user.password_hash


async def test_a_change_of_password_rechecks_a_password_replaced_during_its_check(
    client: httpx.AsyncClient, db: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The current password is checked outside the request's transaction: replaced meanwhile
    (another device's change), the replaced one no longer authorises a change."""
    member = await make_member(db)
    replaced_by = "copper-meadow-64"
    replace_password_after_next_check(db, member, replaced_by, monkeypatch)
    refused = await client.post(
        "/api/v1/users/me/change-password",
        json={"current_password": member.password, "new_password": "another-new-passphrase"},
        headers=member.headers,
    )
    assert refused.status_code == 403
    await login(client, member, replaced_by)  # the other device's password stands

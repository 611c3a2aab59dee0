"""Password reset, e-mail verification, sign-up and invitations, end to end over real SMTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select, update

from clinicflow.auth.models import AccountToken
from clinicflow.core.models import utcnow
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.invitations.models import Invitation
from clinicflow.main import create_app
from clinicflow.notifications.models import OutboxMessage
from clinicflow.tenants.models import Membership
from clinicflow.users.models import User
from tests import documented_statuses
from tests.factories import deliver_outbox, make_member, make_platform_admin, make_tenant
from tests.mailtools import Inbox, running_inbox

NEW_PASSWORD = "a-fresh-passphrase-2026"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    yield from running_inbox()


@pytest.fixture
async def smtp_client(
    inbox: Inbox, db: FastAPI, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The app wired to the SMTP server, on the same test database as `db`."""
    smtp_settings = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.port,
            "smtp_tls": "none",
            "frontend_url": "https://app.example.test",
        }
    )
    app = create_app(smtp_settings)
    async with app.router.lifespan_context(app):

        async def deliver_queued(response: httpx.Response) -> None:
            """The worker's job, run after each response so the test can look at the inbox."""
            await deliver_outbox(app)

        transport = httpx.ASGITransport(
            app=documented_statuses.recording(app), client=("203.0.113.20", 5000)
        )
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            event_hooks={"response": [deliver_queued]},
        ) as client:
            yield client


async def test_password_reset_over_smtp_is_single_use_and_ends_sessions(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    member = await make_member(db)
    asked = await smtp_client.post("/api/v1/auth/forgot-password", json={"email": member.email})
    assert asked.status_code == 202
    message = inbox.last_to(member.email)
    assert "reset" in message["Subject"].lower()
    token = inbox.link_token(member.email)
    assert "https://app.example.test/reset-password?token=" in str(message)

    reset = await smtp_client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204
    assert (await smtp_client.get("/api/v1/auth/me", headers=member.headers)).status_code == 401
    old = await smtp_client.post(
        "/api/v1/auth/login", json={"username": member.email, "password": member.password}
    )
    assert old.status_code == 401
    new = await smtp_client.post(
        "/api/v1/auth/login", json={"username": member.email, "password": NEW_PASSWORD}
    )
    assert new.status_code == 200
    again = await smtp_client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": "yet-another-phrase-9"}
    )
    assert again.status_code == 404  # spent: no such link any more


async def test_expired_reset_token_is_refused_and_a_weak_password_spends_nothing(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    member = await make_member(db)
    await smtp_client.post("/api/v1/auth/forgot-password", json={"email": member.email})
    token = inbox.link_token(member.email)
    weak = await smtp_client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": "password1"}
    )
    assert weak.status_code == 422
    assert [e["field"] for e in weak.json()["errors"]] == ["new_password"]  # the request's name
    async with db.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(AccountToken).values(expires_at=utcnow() - timedelta(minutes=1))
        )
    expired = await smtp_client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert expired.status_code == 404


async def test_forgot_password_answers_the_same_for_unknown_emails(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    member = await make_member(db)
    known = await smtp_client.post("/api/v1/auth/forgot-password", json={"email": member.email})
    unknown = await smtp_client.post(
        "/api/v1/auth/forgot-password", json={"email": "nobody@example.com"}
    )
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    assert [str(m["To"]) for m in inbox.messages] == [member.email]


async def test_sign_up_creates_a_practice_and_verifies_the_email(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    body = {
        "email": "new.owner@example.com",
        "password": "k9#vQ2pX-signup",
        "full_name": "New Owner",
        "practice_name": "Clínica Nova",
    }
    created = await smtp_client.post("/api/v1/auth/register", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["tenant"]["name"] == "Clínica Nova"
    assert created.json()["user"]["email_verified_at"] is None
    token = inbox.link_token("new.owner@example.com")
    assert (
        await smtp_client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 204
    assert (
        await smtp_client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 404
    login = await smtp_client.post(
        "/api/v1/auth/login", json={"username": body["email"], "password": body["password"]}
    )
    me = await smtp_client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["email_verified_at"] is not None
    role = await smtp_client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert role.json()["role"] == "owner"


async def test_sign_up_can_be_switched_off(db: FastAPI, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"registration_enabled": False}))
    async with app.router.lifespan_context(app):
        # Recorded: the 403 must be in the document's answers for the route.
        transport = httpx.ASGITransport(app=documented_statuses.recording(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/api/v1/auth/register",
                json={"email": "x@example.com", "password": "k9#vQ2pX-signup",
                      "full_name": "X", "practice_name": "X"},
            )  # fmt: skip
    assert response.status_code == 403


async def test_invitation_arrives_and_accepting_gives_exactly_the_invited_role(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(db, role="owner")
    other_practice = await make_member(db, role="owner")
    invited = await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "New.Assistant@example.com", "role": "assistant"},
        headers=owner.headers,
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["tenant_id"] == str(owner.tenant_id)
    token = inbox.link_token("new.assistant@example.com")
    public = await smtp_client.get(f"/api/v1/invitations/{token}")
    assert public.status_code == 200
    assert public.json()["role"] == "assistant"
    assert public.json()["email"] == "new.assistant@example.com"

    accepted = await smtp_client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": "k9#vQ2pX-invited", "full_name": "New Assistant"},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "assistant"
    assert accepted.json()["tenant_id"] == str(owner.tenant_id)
    login = await smtp_client.post(
        "/api/v1/auth/login",
        json={"username": "new.assistant@example.com", "password": "k9#vQ2pX-invited"},
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = await smtp_client.get("/api/v1/auth/me", headers=headers)
    assert (me.json()["role"], me.json()["tenant_id"]) == ("assistant", str(owner.tenant_id))
    elsewhere = await smtp_client.get(
        "/api/v1/auth/me", headers={**headers, "X-Tenant-ID": str(other_practice.tenant_id)}
    )
    assert elsewhere.status_code == 403
    reused = await smtp_client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": "k9#vQ2pX-invited", "full_name": "Again"},
    )
    assert reused.status_code == 404


async def test_revoked_expired_and_forged_invitations_are_refused(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(db, role="owner")
    revoked = await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "r@example.com", "role": "viewer"},
        headers=owner.headers,
    )
    revoked_token = inbox.link_token("r@example.com")
    gone = await smtp_client.delete(
        f"/api/v1/invitations/{revoked.json()['id']}", headers=owner.headers
    )
    assert gone.status_code == 204
    await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "e@example.com", "role": "viewer"},
        headers=owner.headers,
    )
    expired_token = inbox.link_token("e@example.com")
    async with db.state.database.sessionmaker() as session, session.begin():
        await set_session_tenant(session, owner.tenant_id)
        await session.execute(
            update(Invitation)
            .where(Invitation.email == "e@example.com")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    for token in (revoked_token, expired_token, "cfi_forged", f"cfi_{uuid.uuid4().hex}"):
        assert (await smtp_client.get(f"/api/v1/invitations/{token}")).status_code == 404
        refused = await smtp_client.post(
            "/api/v1/invitations/accept",
            json={"token": token, "password": "k9#vQ2pX-invited", "full_name": "Nope"},
        )
        assert refused.status_code == 404
    pending = await smtp_client.get("/api/v1/invitations", headers=owner.headers)
    assert pending.json()["items"] == []


async def test_an_existing_account_accepts_only_when_logged_in_as_itself(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(db, role="owner")
    elsewhere = await make_member(db, role="owner")
    await smtp_client.post(
        "/api/v1/invitations",
        json={"email": elsewhere.email, "role": "viewer"},
        headers=owner.headers,
    )
    token = inbox.link_token(elsewhere.email)
    anonymous = await smtp_client.post("/api/v1/invitations/accept", json={"token": token})
    assert anonymous.status_code == 409
    as_owner = await smtp_client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=owner.headers
    )
    assert as_owner.status_code == 409
    accepted = await smtp_client.post(
        "/api/v1/invitations/accept", json={"token": token}, headers=elsewhere.headers
    )
    assert accepted.status_code == 200, accepted.text
    switched = await smtp_client.get(
        "/api/v1/auth/me", headers={**elsewhere.headers, "X-Tenant-ID": str(owner.tenant_id)}
    )
    assert switched.json()["role"] == "viewer"


async def test_the_platform_admin_invites_the_owner_of_an_ownerless_practice_only(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    admin = await make_platform_admin(db)
    ownerless = await make_tenant(db)
    missing = await smtp_client.post(
        "/api/v1/invitations", json={"email": "o2@example.com", "role": "owner"},
        headers=admin.headers,
    )  # fmt: skip
    assert missing.status_code == 422
    invited = await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "o2@example.com", "role": "owner", "tenant_id": str(ownerless)},
        headers=admin.headers,
    )
    assert invited.status_code == 201
    assert inbox.link_token("o2@example.com").startswith("cfi_")
    owner = await make_member(db, role="owner")
    foreign = await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "o3@example.com", "role": "owner", "tenant_id": str(uuid.uuid4())},
        headers=owner.headers,
    )
    assert foreign.status_code == 403


async def test_a_second_owner_link_from_the_operator_dies_once_the_practice_has_an_owner(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    """Both links were allowed when made (no owner yet); once the real owner joined and
    registered a patient, the operator's other link opens nothing (403, no membership)."""
    admin = await make_platform_admin(db)
    created = await smtp_client.post(
        "/api/v1/tenants",
        json={"name": "Clínica Nova", "owner_email": "real.nova@example.com",
              "owner_full_name": "Dr Nova"},
        headers=admin.headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    planted = await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "plant.nova@example.com", "role": "owner", "tenant_id": tenant_id},
        headers=admin.headers,
    )
    assert planted.status_code == 201  # no owner yet: allowed when made
    await _wait_for_mail(inbox, "real.nova@example.com")
    await _wait_for_mail(inbox, "plant.nova@example.com")
    joined = await smtp_client.post(
        "/api/v1/invitations/accept",
        json={"token": inbox.link_token("real.nova@example.com"), "password": "k9#vQ2pX-nova",
              "full_name": "Dr Nova"},
    )  # fmt: skip
    assert joined.status_code == 200, joined.text
    login = await smtp_client.post(
        "/api/v1/auth/login",
        json={"username": "real.nova@example.com", "password": "k9#vQ2pX-nova"},
    )
    owner = {"Authorization": f"Bearer {login.json()['access_token']}"}
    patient = await smtp_client.post(
        "/api/v1/patients", json={"full_name": "Private Person"}, headers=owner
    )
    assert patient.status_code == 201, patient.text
    opened = await smtp_client.post(
        "/api/v1/invitations/accept",
        json={"token": inbox.link_token("plant.nova@example.com"), "password": "k9#vQ2pX-plant",
              "full_name": "Plant"},
    )  # fmt: skip
    assert opened.status_code == 403, opened.text
    members = await smtp_client.get("/api/v1/tenant/members", headers=owner)
    assert [m["email"] for m in members.json()["items"]] == ["real.nova@example.com"]


async def test_the_platform_admin_has_no_path_to_a_practices_clinical_data(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    """Invite an address they control into a practice, with any role, or the new owner of a
    practice whose owners are gone but whose patients are not: every path is closed (403),
    nothing is queued. An invitation the owner sends to the admin's own account is refused
    on accepting."""
    owner = await make_member(db, role="owner", email="real.owner@example.com")
    admin = await make_platform_admin(db)
    target = str(owner.tenant_id)

    async def invite(email: str, role: str, headers: dict[str, str]) -> httpx.Response:
        return await smtp_client.post(
            "/api/v1/invitations",
            json={"email": email, "role": role, "tenant_id": target},
            headers=headers,
        )

    for role in ("owner", "assistant", "viewer"):
        refused = await invite("plant@example.com", role, admin.headers)
        assert refused.status_code == 403, role
    patient = await smtp_client.post(
        "/api/v1/patients", json={"full_name": "Kept Private"}, headers=owner.headers
    )
    assert patient.status_code == 201
    async with db.state.database.sessionmaker() as session, session.begin():
        await set_session_tenant(session, owner.tenant_id)
        await session.execute(delete(Membership).where(Membership.user_id == owner.user_id))
    orphaned = await invite("plant@example.com", "owner", admin.headers)
    assert orphaned.status_code == 403
    assert "clinical data" in orphaned.json()["detail"]
    pending = await smtp_client.get(
        "/api/v1/invitations", params={"tenant_id": target}, headers=admin.headers
    )
    assert pending.json()["items"] == []

    other = await make_member(db, role="owner")
    target = str(other.tenant_id)
    offered = await invite(admin.email, "assistant", other.headers)
    assert offered.status_code == 201
    await _wait_for_mail(inbox, admin.email)
    joined = await smtp_client.post(
        "/api/v1/invitations/accept",
        json={"token": inbox.link_token(admin.email)},
        headers=admin.headers,
    )
    assert joined.status_code == 403  # a platform admin account never joins a practice
    patients = await smtp_client.get(
        "/api/v1/patients", headers={**admin.headers, "X-Tenant-ID": target}
    )
    assert patients.status_code == 403


async def test_sign_up_with_a_known_address_answers_like_a_new_one_and_tells_the_owner(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(db, role="owner", email="taken@example.com")
    body = {"password": "k9#vQ2pX-signup", "full_name": "Someone Else", "practice_name": "Mine"}
    known = await smtp_client.post(
        "/api/v1/auth/register", json={**body, "email": "taken@example.com"}
    )
    new = await smtp_client.post(
        "/api/v1/auth/register", json={**body, "email": "brand.new@example.com"}
    )
    assert known.status_code == new.status_code == 201
    assert _shape(known.json()) == _shape(new.json())  # same members, same types
    assert known.json()["tenant"]["name"] == new.json()["tenant"]["name"] == "Mine"
    await _wait_for_mail(inbox, "taken@example.com")
    assert "Someone tried to sign up" in str(inbox.last_to("taken@example.com")["Subject"])
    login = await smtp_client.post(
        "/api/v1/auth/login", json={"username": "taken@example.com", "password": body["password"]}
    )
    assert login.status_code == 401  # nothing was created or changed for the known address
    me = await smtp_client.get("/api/v1/auth/me", headers=owner.headers)
    assert me.json()["tenant_id"] == str(owner.tenant_id)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


async def _wait_for_mail(inbox: Inbox, address: str) -> None:
    for _ in range(100):
        if any(address in str(message["To"]) for message in inbox.messages):
            return
        await asyncio.sleep(0.05)


async def test_an_unverified_account_cannot_register_patients_or_issue_api_keys(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    unverified = await make_member(db, role="owner", verified=False)
    patient = await client.post(
        "/api/v1/patients", json={"full_name": "P"}, headers=unverified.headers
    )
    key = await client.post(
        "/api/v1/api-keys", json={"name": "bot", "scopes": ["patients:read"]},
        headers=unverified.headers,
    )  # fmt: skip
    for refused in (patient, key):
        assert refused.status_code == 403
        assert "Confirm your e-mail" in refused.json()["detail"]
    verified = await make_member(db, role="owner")
    assert (
        await client.post("/api/v1/patients", json={"full_name": "P"}, headers=verified.headers)
    ).status_code == 201


async def test_a_password_reset_suspends_the_api_keys_created_before_it(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    """Account pre-claiming: whoever held the account before the reset keeps no working key."""
    owner = await make_member(db, role="owner", email="victim@example.com")
    created = await smtp_client.post(
        "/api/v1/api-keys", json={"name": "attacker bot", "scopes": ["patients:read"]},
        headers=owner.headers,
    )  # fmt: skip
    key = {"X-API-Key": created.json()["key"]}
    assert (await smtp_client.get("/api/v1/patients", headers=key)).status_code == 200
    await smtp_client.post("/api/v1/auth/forgot-password", json={"email": "victim@example.com"})
    await _wait_for_mail(inbox, "victim@example.com")
    token = inbox.link_token("victim@example.com")
    reset = await smtp_client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204
    suspended = await smtp_client.get("/api/v1/patients", headers=key)
    assert suspended.status_code == 401
    assert "suspended" in suspended.json()["detail"]
    notice = inbox.last_to("victim@example.com")
    assert "password was reset" in str(notice["Subject"])
    assert "attacker bot" in notice.get_payload(0).get_payload(decode=True).decode()
    login = await smtp_client.post(
        "/api/v1/auth/login", json={"username": "victim@example.com", "password": NEW_PASSWORD}
    )
    owner_again = {"Authorization": f"Bearer {login.json()['access_token']}"}
    listed = (await smtp_client.get("/api/v1/api-keys", headers=owner_again)).json()["items"]
    assert listed[0]["suspended_at"] is not None
    confirmed = await smtp_client.post(
        f"/api/v1/api-keys/{created.json()['id']}/confirm", headers=owner_again
    )
    assert confirmed.status_code == 200
    assert confirmed.json()["suspended_at"] is None
    assert (await smtp_client.get("/api/v1/patients", headers=key)).status_code == 200


async def test_a_sign_up_decoy_has_the_ids_and_times_a_real_sign_up_has(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """A real sign-up writes the account, then the practice: their creation times differ and
    their UUIDv7 ids follow in that order. The decoy for a known address is made the same way
    (and stored nowhere), so these do not tell it apart."""
    admin = await make_platform_admin(db)
    await make_member(db, role="owner", email="known@example.com")
    body = {"password": "k9#vQ2pX-signup", "full_name": "Someone", "practice_name": "Mine"}
    answers = {}
    for email in ("known@example.com", "fresh@example.com"):
        response = await client.post("/api/v1/auth/register", json={**body, "email": email})
        assert response.status_code == 201, response.text
        answers[email] = response.json()
    for email, answer in answers.items():
        user, tenant = answer["user"], answer["tenant"]
        user_id, tenant_id = uuid.UUID(user["id"]), uuid.UUID(tenant["id"])
        assert (user_id.version, tenant_id.version) == (7, 7), email
        assert user_id < tenant_id, email
        created = datetime.fromisoformat(user["created_at"])
        assert created < datetime.fromisoformat(tenant["created_at"]), email
    decoy = answers["known@example.com"]
    # Stored nowhere: neither the account nor the practice exists, and nothing is left behind.
    assert (
        await client.get(f"/api/v1/users/{decoy['user']['id']}", headers=admin.headers)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/tenants/{decoy['tenant']['id']}", headers=admin.headers)
    ).status_code == 404
    async with db.state.database.sessionmaker() as session:
        addresses = (await session.execute(select(User.email).order_by(User.email))).scalars()
        assert [a for a in addresses if "example.com" not in a] == []
        tokens = (await session.execute(select(AccountToken.user_id))).scalars()
        assert set(tokens) == {uuid.UUID(answers["fresh@example.com"]["user"]["id"])}


async def _queued_kinds_and_tokens(app: FastAPI) -> tuple[list[str], int]:
    async with app.state.database.sessionmaker() as session:
        kinds = (await session.execute(select(OutboxMessage.kind))).scalars()
        tokens = (await session.execute(select(AccountToken.id))).scalars()
        return sorted(kinds), len(list(tokens))


async def test_forgot_password_does_the_same_work_for_known_and_unknown_addresses(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """No account enumeration by timing: the request stores the same thing whether or not the
    address has an account (one queued job, no token); the worker decides and sends."""
    member = await make_member(db)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    stored = []
    for email in (member.email, unknown):
        before = await _queued_kinds_and_tokens(db)
        asked = await client.post("/api/v1/auth/forgot-password", json={"email": email})
        assert asked.status_code == 202
        after = await _queued_kinds_and_tokens(db)
        stored.append((len(after[0]) - len(before[0]), after[1] - before[1]))
    assert stored == [(1, 0), (1, 0)]
    kinds, _ = await _queued_kinds_and_tokens(db)
    assert len(set(kinds)) == 1  # the same kind of row for both

    await deliver_outbox(db)
    assert db.state.mailer.latest(unknown) is None
    message = db.state.mailer.latest(member.email)
    assert message is not None
    assert "reset" in message.subject.lower()
    token = message.text.split("token=")[1].split()[0]
    reset = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204
    again = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD + "x"}
    )
    assert again.status_code == 404

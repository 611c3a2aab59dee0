"""Password reset, e-mail verification, sign-up and invitations, end to end over real SMTP."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import select, update

from clinicflow.auth.models import AccountToken
from clinicflow.core.models import utcnow
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.invitations.models import Invitation
from clinicflow.main import create_app
from clinicflow.users.repository import UserRepository
from tests.factories import deliver_outbox, make_member, make_platform_admin

NEW_PASSWORD = "a-fresh-passphrase-2026"


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def last_to(self, address: str) -> Message:
        found = [m for m in self.messages if address in str(m["To"])]
        assert found, f"no e-mail to {address}"
        return found[-1]

    def link_token(self, address: str) -> str:
        message = self.last_to(address)
        parts = [
            p.get_payload(decode=True).decode() for p in message.walk() if not p.is_multipart()
        ]
        tokens = {match for part in parts for match in re.findall(r"token=([\w-]+)", part)}
        assert len(tokens) == 1, tokens  # text and HTML parts carry the same link
        return tokens.pop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    handler.port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


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

        transport = httpx.ASGITransport(app=app, client=("203.0.113.20", 5000))
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
    assert again.status_code == 400


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
    async with db.state.database.sessionmaker() as session, session.begin():
        await session.execute(
            update(AccountToken).values(expires_at=utcnow() - timedelta(minutes=1))
        )
    expired = await smtp_client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert expired.status_code == 400


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
    duplicate = await smtp_client.post("/api/v1/auth/register", json=body)
    assert duplicate.status_code == 409
    token = inbox.link_token("new.owner@example.com")
    assert (
        await smtp_client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 204
    assert (
        await smtp_client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 400
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
        transport = httpx.ASGITransport(app=app)
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


async def test_platform_admin_invites_into_any_practice(
    smtp_client: httpx.AsyncClient, db: FastAPI, inbox: Inbox
) -> None:
    owner = await make_member(db, role="owner")
    admin = await make_platform_admin(db)
    missing = await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "o2@example.com", "role": "owner"},
        headers=admin.headers,
    )
    assert missing.status_code == 422
    invited = await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "o2@example.com", "role": "owner", "tenant_id": str(owner.tenant_id)},
        headers=admin.headers,
    )
    assert invited.status_code == 201
    assert inbox.link_token("o2@example.com").startswith("cfi_")
    foreign = await smtp_client.post(
        "/api/v1/invitations",
        json={"email": "o3@example.com", "role": "owner", "tenant_id": str(uuid.uuid4())},
        headers=owner.headers,
    )
    assert foreign.status_code == 403
    async with db.state.database.sessionmaker() as session:
        assert await UserRepository(session).get_by_email("o2@example.com") is None
        await set_session_tenant(session, owner.tenant_id)
        stored = (await session.execute(select(Invitation.email))).scalars().all()
    assert stored == ["o2@example.com"]

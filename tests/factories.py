"""Build tenants, members and their tokens straight through the services (no HTTP round trip),
each in a writer's unit of work as the app's own writers (`committed`): on SQLite a bare
transaction that read before writing failed "database is locked" when the in-process worker
committed in between."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.types import Message, Receive

from clinicflow.auth.service import AuthService
from clinicflow.core.database import committed
from clinicflow.core.models import utcnow
from clinicflow.notifications.outbox import Worker
from clinicflow.tenants.models import Role
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.service import add_member, create_tenant
from clinicflow.users.service import create_user

DEFAULT_PASSWORD = "k9#vQ2pX-long-enough"


@dataclass(frozen=True, slots=True)
class Member:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def make_tenant(app: FastAPI, name: str | None = None, timezone: str = "UTC") -> uuid.UUID:
    async with committed(app.state.database) as session:
        tenant = await create_tenant(
            session, name=name or f"Practice {uuid.uuid4().hex[:6]}", timezone=timezone
        )
        return tenant.id


async def make_member(
    app: FastAPI,
    *,
    tenant_id: uuid.UUID | None = None,
    role: str = "owner",
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    full_name: str = "Test Person",
    verified: bool = True,
) -> Member:
    """A user with a membership (a new tenant unless given) and a live session's tokens."""
    tenant_id = tenant_id or await make_tenant(app)
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    settings, hasher = app.state.settings, app.state.password_hasher
    async with committed(app.state.database) as session:
        user = await create_user(
            session, hasher, email=email, password=password, full_name=full_name
        )
        user.email_verified_at = utcnow() if verified else None
        tenant = await TenantRepository(session).get(tenant_id)
        assert tenant is not None
        await add_member(session, tenant, user, Role(role))
        pair = await AuthService(session, settings, hasher).start_session(user)
    return Member(user.id, tenant_id, role, email, password, pair.access_token, pair.refresh_token)


async def make_platform_admin(app: FastAPI, email: str | None = None) -> Member:
    email = email or f"admin-{uuid.uuid4().hex[:8]}@example.com"
    settings, hasher = app.state.settings, app.state.password_hasher
    async with committed(app.state.database) as session:
        user = await create_user(
            session, hasher, email=email, password=DEFAULT_PASSWORD,
            full_name="Platform Admin", is_platform_admin=True,
        )  # fmt: skip
        pair = await AuthService(session, settings, hasher).start_session(user)
    return Member(
        user.id, None, "platform_admin", email, DEFAULT_PASSWORD,
        pair.access_token, pair.refresh_token,
    )  # fmt: skip


async def make_api_key(
    app: FastAPI, tenant_id: uuid.UUID, scopes: list[str], name: str = "n8n agent"
) -> str:
    """An API key of the tenant with these scopes; returns the secret."""
    from clinicflow.apikeys.service import ApiKeyService
    from clinicflow.audit.service import Actor
    from clinicflow.core.tenancy import set_session_tenant

    async with committed(app.state.database) as session:
        await set_session_tenant(session, tenant_id)
        issued = await ApiKeyService(session).create(tenant_id, name, scopes, None, Actor())
    return issued.secret


async def deliver_outbox(app: FastAPI) -> int:
    """What `clinicflow worker` does, once, until nothing is due: the number delivered."""
    worker = Worker(
        app.state.database.sessionmaker, app.state.key_ring, app.state.mailer, app.state.settings
    )
    total = 0
    while claimed := await worker.run_once():
        total += claimed
    return total


async def post_raw(
    app: FastAPI, member: Member, path: str, receive: Receive, *, content_type: str
) -> list[int]:
    """POST straight to the ASGI app with the member's credentials, its body coming from
    `receive` (a body that arrives late, or never): the statuses answered."""
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    headers = [(name.lower().encode(), value.encode()) for name, value in member.headers.items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("203.0.113.7", 5000), "server": ("testserver", 80),
        "headers": [*headers, (b"content-type", content_type.encode())],
    }  # fmt: skip
    await app(scope, receive, send)
    return statuses

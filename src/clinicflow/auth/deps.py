"""Who is calling, in which tenant, with which permissions: the one permission dependency."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from clinicflow.apikeys.auth import authenticate_key
from clinicflow.audit.service import Actor
from clinicflow.auth.permissions import PLATFORM_ADMIN, ROLE_PERMISSIONS, Permission
from clinicflow.auth.repository import AuthRepository
from clinicflow.auth.tokens import decode_access_token
from clinicflow.core.database import SessionDep
from clinicflow.core.errors import BadRequest, NotAuthenticated, PermissionDenied, TenantReadOnly
from clinicflow.core.models import utcnow
from clinicflow.core.tenancy import set_session_tenant

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_used_at is a write; once a minute per session is precise enough for a device list.
_TOUCH_INTERVAL = timedelta(minutes=1)
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    """A logged-in user (user_id + session_id) or an API key (api_key_id), in a tenant or not."""

    user_id: uuid.UUID | None
    session_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    role: str
    permissions: frozenset[Permission]
    tenant_read_only: bool = False
    api_key_id: uuid.UUID | None = None

    @property
    def is_platform_admin(self) -> bool:
        return self.role == PLATFORM_ADMIN

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, api_key_id=self.api_key_id)

    def require_user(self) -> uuid.UUID:
        if self.user_id is None:
            raise PermissionDenied("This action needs a logged-in user, not an API key.")
        return self.user_id

    def require_session(self) -> uuid.UUID:
        if self.session_id is None:
            raise PermissionDenied("This action needs a logged-in user, not an API key.")
        return self.session_id

    def require_tenant(self) -> uuid.UUID:
        if self.tenant_id is None:
            raise PermissionDenied("This action needs a practice (tenant) context.")
        return self.tenant_id


def _parse_tenant_header(value: str | None) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(value)
    except ValueError as error:
        raise BadRequest("X-Tenant-ID must be a UUID.") from error


async def get_principal(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
    x_tenant_id: Annotated[str | None, Header(description="Pick one of your practices")] = None,
) -> Principal:
    if not token:
        raise NotAuthenticated("Authentication required.")
    claims = decode_access_token(request.app.state.settings, token)
    repository = AuthRepository(session)
    found = await repository.get_session_with_user(claims.session_id)
    now = utcnow()
    if found is None:
        raise NotAuthenticated("The session has ended.")
    auth_session, user = found
    if (
        auth_session.revoked_at is not None
        or auth_session.expires_at <= now
        or auth_session.user_id != claims.user_id
        or not user.is_active
    ):
        raise NotAuthenticated("The session has ended.")
    if now - auth_session.last_used_at > _TOUCH_INTERVAL:
        await repository.touch_session(auth_session.id, now)
    requested_tenant = _parse_tenant_header(x_tenant_id)
    structlog.contextvars.bind_contextvars(user_id=str(user.id))
    if user.is_platform_admin:
        if requested_tenant is not None:
            raise PermissionDenied("Platform admins do not act inside a practice.")
        return Principal(
            user.id, auth_session.id, None, PLATFORM_ADMIN, ROLE_PERMISSIONS[PLATFORM_ADMIN]
        )
    tenant_id = requested_tenant or claims.tenant_id
    if tenant_id is None:
        return Principal(user.id, auth_session.id, None, "none", frozenset())
    await set_session_tenant(session, tenant_id)
    membership = await repository.get_membership_and_tenant(user.id, tenant_id)
    if membership is None:
        await set_session_tenant(session, None)
        raise PermissionDenied("You are not a member of this practice.")
    member, tenant = membership
    structlog.contextvars.bind_contextvars(tenant_id=str(tenant_id))
    return Principal(
        user.id,
        auth_session.id,
        tenant_id,
        member.role.value,
        ROLE_PERMISSIONS[member.role.value],
        tenant_read_only=tenant.read_only,
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_caller(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    x_tenant_id: Annotated[str | None, Header(description="Pick one of your practices")] = None,
) -> Principal:
    """A user's bearer token or a practice's API key (chatbots, n8n)."""
    if not api_key:
        return await get_principal(request, session, token, x_tenant_id)
    found = await authenticate_key(session, api_key)
    structlog.contextvars.bind_contextvars(
        tenant_id=str(found.tenant.id), api_key_id=str(found.key.id)
    )
    return Principal(
        user_id=None,
        session_id=None,
        tenant_id=found.tenant.id,
        role="api_key",
        permissions=found.permissions,
        tenant_read_only=found.tenant.read_only,
        api_key_id=found.key.id,
    )


CallerPrincipal = Annotated[Principal, Depends(get_caller)]


def _refuse_write_if_read_only(request: Request, principal: Principal) -> None:
    if principal.tenant_read_only and request.method not in SAFE_METHODS:
        raise TenantReadOnly(
            "This practice is in read-only mode; changes are disabled until the platform "
            "operator lifts it."
        )


async def get_member(request: Request, principal: CurrentPrincipal) -> Principal:
    """A logged-in user acting inside a practice (no API key): their own per-member settings
    such as a calendar feed. 423 for a write in a read-only tenant."""
    principal.require_tenant()
    _refuse_write_if_read_only(request, principal)
    return principal


MemberPrincipal = Annotated[Principal, Depends(get_member)]


def require(*permissions: Permission) -> Callable[..., Awaitable[Principal]]:
    """`Depends(require(Permission.X[, Permission.Y]))`: 401 without credentials, 403 without
    any of the permissions, 423 for a write in a read-only tenant."""
    names = " or ".join(f"'{permission.value}'" for permission in permissions)

    async def dependency(request: Request, principal: CallerPrincipal) -> Principal:
        if principal.permissions.isdisjoint(permissions):
            raise PermissionDenied(f"This action needs the {names} permission.")
        _refuse_write_if_read_only(request, principal)
        return principal

    dependency.__name__ = "require_" + "_or_".join(p.name.lower() for p in permissions)
    return dependency


async def get_optional_principal(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
    x_tenant_id: Annotated[str | None, Header()] = None,
) -> Principal | None:
    """For public routes that behave differently for a logged-in caller."""
    if not token:
        return None
    return await get_principal(request, session, token, x_tenant_id)

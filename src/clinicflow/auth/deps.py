"""Who is calling, in which tenant, with which permissions: the one permission dependency."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.apikeys.auth import AuthenticatedKey, authenticate_key
from clinicflow.audit.service import Actor
from clinicflow.auth.permissions import PLATFORM_ADMIN, ROLE_PERMISSIONS, Permission
from clinicflow.auth.principal_cache import Basis, CacheKey, principals
from clinicflow.auth.repository import AuthRepository
from clinicflow.auth.tokens import AccessClaims, decode_access_token
from clinicflow.core.database import SessionDep, keep_books_after_commit
from clinicflow.core.errors import (
    READ_ONLY_DETAIL,
    NotAuthenticated,
    PermissionDenied,
    TenantReadOnly,
)
from clinicflow.core.models import utcnow
from clinicflow.core.ratelimit import charge_refused, charge_verified
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
    # An API key was issued by a verified owner; a user has confirmed the e-mail address or not.
    email_verified: bool = True

    @property
    def is_platform_admin(self) -> bool:
        return self.role == PLATFORM_ADMIN

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, api_key_id=self.api_key_id)

    @property
    def rate_limit_key(self) -> str:
        """Whose budget a request spends: the API key's, or the login session's."""
        return f"key:{self.api_key_id}" if self.api_key_id else f"session:{self.session_id}"

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


# Declared as a UUID so the OpenAPI document says what the server accepts (422 otherwise).
TenantHeader = Annotated[
    uuid.UUID | None,
    Header(description="Which of your practices to act in (default: the one you logged into)."),
]


async def get_principal(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
    x_tenant_id: TenantHeader = None,
) -> Principal:
    return await _charged(request, _user_principal(request, session, token, x_tenant_id))


async def _charged(request: Request, verifying: Awaitable[Principal]) -> Principal:
    """Rate limits follow verification: a verified caller spends its own budget, credentials
    that fail spend the client IP's (so random credentials cannot mint fresh budgets)."""
    try:
        principal = await verifying
    except NotAuthenticated:
        await charge_refused(request)
        raise
    await charge_verified(request, principal.rate_limit_key)
    return principal


async def _user_principal(
    request: Request, session: AsyncSession, token: str | None, x_tenant_id: uuid.UUID | None
) -> Principal:
    if not token:
        raise NotAuthenticated("Authentication required.")
    key: CacheKey = ("token", token, x_tenant_id)
    principal = await _remembered_or_vetted(session, key, lambda: _vet_user(request, session, key))
    structlog.contextvars.bind_contextvars(user_id=str(principal.user_id))
    if principal.tenant_id is not None:
        structlog.contextvars.bind_contextvars(tenant_id=str(principal.tenant_id))
    return principal


async def _vet_user(request: Request, session: AsyncSession, key: CacheKey) -> Principal:
    _, token, x_tenant_id = key
    generation = principals.generation
    settings = request.app.state.settings
    claims = decode_access_token(settings, token)
    principal, lasts = await _verified_user_principal(session, claims, x_tenant_id)
    until_expiry = (claims.expires_at - utcnow()).total_seconds()
    basis = Basis(principal.tenant_id, principal.user_id, principal.session_id)
    seconds = min(lasts, until_expiry, settings.auth_cache_seconds)
    principals.put(key, principal, basis, seconds=seconds, generation=generation)
    return principal


async def _remembered_or_vetted(
    session: AsyncSession, key: CacheKey, vet: Callable[[], Awaitable[Principal]]
) -> Principal:
    """The caller this process remembers for `key`, else the one another request is vetting
    right now (waited for once), else `vet()`."""
    principal = await _remembered(session, key)
    if principal is None and await principals.wait_for_vetting(key):
        principal = await _remembered(session, key)  # vetted while this request waited
    if principal is None:
        with principals.vetting(key):
            principal = await vet()
    return principal


async def _remembered(session: AsyncSession, key: CacheKey) -> Principal | None:
    """The caller this process vetted for this credential a moment ago, if any, with the
    request's session scoped to its practice as a fresh check would leave it."""
    principal = principals.get(key)
    if not isinstance(principal, Principal):
        return None
    if principal.tenant_id is not None:
        await set_session_tenant(session, principal.tenant_id)
    return principal


async def _verified_user_principal(
    session: AsyncSession, claims: AccessClaims, x_tenant_id: uuid.UUID | None
) -> tuple[Principal, float]:
    """The caller as the database says now, and for how many seconds more its login session
    lasts. Leaves the request's session scoped to the caller's practice."""
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
    lasts = (auth_session.expires_at - now).total_seconds()
    if now - auth_session.last_used_at > _TOUCH_INTERVAL:
        keep_books_after_commit(
            session, None, lambda books: AuthRepository(books).touch_session(auth_session.id, now)
        )
        lasts = 0.0  # not remembered until the touch has been made

    if user.is_platform_admin:
        if x_tenant_id is not None:
            raise PermissionDenied("Platform admins do not act inside a practice.")
        permissions = ROLE_PERMISSIONS[PLATFORM_ADMIN]
        return Principal(user.id, auth_session.id, None, PLATFORM_ADMIN, permissions), lasts
    tenant_id = x_tenant_id or claims.tenant_id
    if tenant_id is None:
        return Principal(user.id, auth_session.id, None, "none", frozenset()), lasts
    await set_session_tenant(session, tenant_id)
    membership = await repository.get_membership_and_tenant(user.id, tenant_id)
    if membership is None:
        await set_session_tenant(session, None)
        if x_tenant_id is not None:
            raise PermissionDenied("You are not a member of this practice.")
        # The practice the token was issued in is gone, or the user left it: they are still
        # themselves (profile, sessions, logout, their other practices), in no practice.
        return Principal(user.id, auth_session.id, None, "none", frozenset()), lasts
    member, tenant = membership
    principal = Principal(
        user.id,
        auth_session.id,
        tenant_id,
        member.role.value,
        ROLE_PERMISSIONS[member.role.value],
        tenant_read_only=tenant.read_only,
        email_verified=user.email_verified_at is not None,
    )
    return principal, lasts


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


async def get_caller(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    x_tenant_id: TenantHeader = None,
) -> Principal:
    """A user's bearer token or a practice's API key (chatbots, n8n)."""
    if not api_key:
        return await get_principal(request, session, token, x_tenant_id)
    return await _charged(request, _key_principal(request, session, api_key))


def _key_cache_key(api_key: str) -> CacheKey:
    # Its own kind, so nothing presented as a bearer token finds a key's entry: it is refused
    # as a token would be, whether or not the key was used a moment ago.
    return ("key", api_key, None)


async def _key_principal(request: Request, session: AsyncSession, api_key: str) -> Principal:
    key = _key_cache_key(api_key)
    principal = await _remembered_or_vetted(
        session, key, lambda: _vet_key(request, session, api_key)
    )
    _bind_key_context(principal)
    return principal


async def _vet_key(request: Request, session: AsyncSession, api_key: str) -> Principal:
    generation = principals.generation
    found = await authenticate_key(session, api_key)
    principal = key_principal(found)
    # Not remembered until the touch of last_used_at has been made.
    seconds = 0.0 if found.touched else request.app.state.settings.auth_cache_seconds
    if found.key.expires_at is not None:
        seconds = min(seconds, (found.key.expires_at - utcnow()).total_seconds())
    basis = Basis(principal.tenant_id, api_key_id=principal.api_key_id)
    principals.put(
        _key_cache_key(api_key), principal, basis, seconds=seconds, generation=generation
    )
    return principal


def key_principal(found: AuthenticatedKey) -> Principal:
    """The caller an API key stands for (REST and /mcp alike)."""
    principal = Principal(
        user_id=None,
        session_id=None,
        tenant_id=found.tenant.id,
        role="api_key",
        permissions=found.permissions,
        tenant_read_only=found.tenant.read_only,
        api_key_id=found.key.id,
    )
    _bind_key_context(principal)
    return principal


def _bind_key_context(principal: Principal) -> None:
    structlog.contextvars.bind_contextvars(
        tenant_id=str(principal.tenant_id), api_key_id=str(principal.api_key_id)
    )


CallerPrincipal = Annotated[Principal, Depends(get_caller)]


def authorize(principal: Principal, permissions: Iterable[Permission], *, writes: bool) -> None:
    """403 without any of the permissions; 423 for a write in a read-only practice."""
    wanted = tuple(permissions)
    if principal.permissions.isdisjoint(wanted):
        names = " or ".join(f"'{permission.value}'" for permission in wanted)
        raise PermissionDenied(f"This action needs the {names} permission.")
    refuse_write_if_read_only(principal, writes=writes)


def refuse_write_if_read_only(principal: Principal, *, writes: bool) -> None:
    if principal.tenant_read_only and writes:
        raise TenantReadOnly(READ_ONLY_DETAIL)


async def get_member(request: Request, principal: CurrentPrincipal) -> Principal:
    """A logged-in user acting inside a practice (no API key): their own per-member settings
    such as a calendar feed. 423 for a write in a read-only tenant."""
    principal.require_tenant()
    refuse_write_if_read_only(principal, writes=request.method not in SAFE_METHODS)
    return principal


async def get_member_revoking(principal: CurrentPrincipal) -> Principal:
    """`get_member` for revoking a credential of one's own (a calendar feed token): a security
    action, allowed in read-only mode like logging out."""
    principal.require_tenant()
    return principal


MemberPrincipal = Annotated[Principal, Depends(get_member)]
RevokingMemberPrincipal = Annotated[Principal, Depends(get_member_revoking)]


def require(
    *permissions: Permission, verified_email: bool = False, revokes_credential: bool = False
) -> Callable[..., Awaitable[Principal]]:
    """`Depends(require(Permission.X[, Permission.Y]))`: 401 without credentials, 403 without
    any of the permissions, 423 for a write in a read-only tenant. `verified_email`: also 403
    until the user has confirmed their address (an account registered with someone else's
    address must not fill a practice with patients or mint API keys). `revokes_credential`:
    the route only takes a credential's power away (revoking an API key), a security action
    that read-only mode must not stop, like logging out: no 423."""

    async def dependency(request: Request, principal: CallerPrincipal) -> Principal:
        writes = request.method not in SAFE_METHODS and not revokes_credential
        authorize(principal, permissions, writes=writes)
        if verified_email and not principal.email_verified:
            raise PermissionDenied(
                "Confirm your e-mail address first (the link we sent; POST "
                "/auth/verify-email/resend sends another)."
            )
        return principal

    dependency.__name__ = "require_" + "_or_".join(p.name.lower() for p in permissions)
    return dependency


async def get_optional_principal(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
    x_tenant_id: TenantHeader = None,
) -> Principal | None:
    """For public routes that behave differently for a logged-in caller."""
    if not token:
        return None
    return await get_principal(request, session, token, x_tenant_id)

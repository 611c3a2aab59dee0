"""Login, refresh-token rotation with reuse detection, logout, sessions, lockout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import service as audit
from clinicflow.auth.deps import Principal
from clinicflow.auth.models import AuthSession, RefreshToken
from clinicflow.auth.permissions import PLATFORM_ADMIN
from clinicflow.auth.repository import AuthRepository
from clinicflow.auth.tokens import hash_refresh_token, issue_access_token, new_refresh_token
from clinicflow.core.database import released
from clinicflow.core.errors import NotAuthenticated, NotFound
from clinicflow.core.logging import request_meta
from clinicflow.core.models import utcnow
from clinicflow.core.security import PasswordHasher
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import set_session_tenant, tenant_context
from clinicflow.tenants.repository import MembershipRepository
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository


class InvalidCredentials(NotAuthenticated):
    """One answer for unknown user, wrong password and locked account (no enumeration).
    The failed-attempt counter and audit event must survive the 401."""

    commit_changes = True

    def __init__(self) -> None:
        super().__init__("Incorrect username or password, or the account is temporarily locked.")


class RefreshRejected(NotAuthenticated):
    commit_changes = True  # a detected reuse revokes the family: keep that revocation

    def __init__(self) -> None:
        super().__init__("The refresh token is invalid, expired or already used.")


@dataclass(frozen=True, slots=True)
class Landing:
    """The practice a new token acts in, and the role there."""

    tenant_id: uuid.UUID | None
    role: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105  (OAuth2 token type, not a secret)


async def register_wrong_password(
    session: AsyncSession, settings: Settings, user: User, details: dict[str, object]
) -> None:
    """A wrong password for the account, wherever it was presented (login, change of
    password): audited as auth.login_failed, counted on the account row (the caller holds its
    row lock), and the account locked at the threshold. The session's tenant picks the chain."""
    user.failed_login_count += 1
    await _audit_user(session, user, "auth.login_failed", details)
    if user.failed_login_count >= settings.lockout_threshold:
        user.locked_until = utcnow() + timedelta(minutes=settings.lockout_minutes)
        user.failed_login_count = 0
        await _audit_user(session, user, "auth.locked", {"minutes": settings.lockout_minutes})


async def _audit_user(
    session: AsyncSession, user: User, action: str, details: dict[str, object]
) -> None:
    await audit.record(
        session, action, actor=audit.Actor(user_id=user.id),
        subject_type="user", subject_id=user.id, details=details,
    )  # fmt: skip


class AuthService:
    def __init__(self, session: AsyncSession, settings: Settings, hasher: PasswordHasher) -> None:
        self.session = session
        self.settings = settings
        self.hasher = hasher
        self.repository = AuthRepository(session)
        self.users = UserRepository(session)

    async def login(self, login: str, password: str) -> TokenPair:
        found = await self.users.get_by_login(login)
        user_id, stored_hash, practice = (
            (found.id, found.password_hash, found.default_tenant_id)
            if found
            else (None, None, None)
        )
        # Verify even for unknown or locked accounts, so every failure costs the same time.
        # argon2 takes tens of milliseconds (longer under load, below request priority):
        # holding the pooled connection (SQLite: the write lock) meanwhile let a burst of
        # logins, or a password-guessing run, take every connection the other requests wait for.
        async with released(self.session):
            result = await self.hasher.verify(password, stored_hash)
        now = utcnow()
        # The rest runs in the practice the user most likely lands in, entered before the
        # transaction begins (its BEGIN carries the setting) and not left: the landing check
        # and the login's writes need no switch away and back (a round trip each).
        await set_session_tenant(self.session, practice)
        user = await self.users.get_for_update(user_id) if user_id else None  # serialise the count
        if user is None:  # unknown, or deleted while its password was checked
            await set_session_tenant(self.session, None)  # the platform's chain records it
            await audit.record(self.session, "auth.login_failed", details={"reason": "unknown"})
            raise InvalidCredentials()
        landing = await self._landing(user)
        async with tenant_context(self.session, landing.tenant_id):
            if user.locked_until is not None and user.locked_until > now:
                await self._audit_user(user, "auth.login_failed", {"reason": "locked"})
                raise InvalidCredentials()
            if user.password_hash != stored_hash:
                # Rewritten while the old one was being checked (a change, a reset, another
                # login's upgrade of its parameters): check against what is stored now.
                # Rare enough to hold the row meanwhile.
                result = await self.hasher.verify(password, user.password_hash)
            if not result.valid or not user.is_active:
                await self._register_failure(user)
                raise InvalidCredentials()
            if result.new_hash:
                user.password_hash = result.new_hash  # parameters were upgraded
            user.failed_login_count = 0
            user.locked_until = None
            user.last_login_at = now
            pair = await self.start_session(user, landing)
            await self._audit_user(user, "auth.login", {})
        return pair

    async def _register_failure(self, user: User) -> None:
        await register_wrong_password(self.session, self.settings, user, {"reason": "password"})

    async def _audit_user(self, user: User, action: str, details: dict[str, object]) -> None:
        await _audit_user(self.session, user, action, details)

    async def start_session(self, user: User, landing: Landing | None = None) -> TokenPair:
        """A new device session (refresh family) in the user's default tenant."""
        now = utcnow()
        meta = request_meta.get()
        auth_session = AuthSession(
            user_id=user.id,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(days=self.settings.refresh_token_days),
            user_agent=(meta.user_agent or "")[:400] if meta else None,
            ip=meta.ip if meta else None,
        )
        self.repository.add(auth_session)
        await self.session.flush()
        return await self._issue_pair(user, auth_session, landing)

    async def _issue_pair(
        self, user: User, auth_session: AuthSession, landing: Landing | None = None
    ) -> TokenPair:
        refresh, refresh_hash = new_refresh_token()
        self.repository.add(
            RefreshToken(
                session_id=auth_session.id,
                token_hash=refresh_hash,
                expires_at=auth_session.expires_at,
            )
        )
        await self.session.flush()
        # Tokens land in the user's default practice; requests pick another with X-Tenant-ID.
        landing = landing or await self._landing(user)
        access, expires_in = issue_access_token(
            self.settings,
            user_id=user.id,
            session_id=auth_session.id,
            tenant_id=landing.tenant_id,
            role=landing.role,
        )
        return TokenPair(access, refresh, expires_in)

    async def _landing(self, user: User) -> Landing:
        """Where the user's tokens land: the default practice while it exists and the user is
        still a member of it; else the first practice they still belong to, which becomes the
        default; else none. A token for a practice the user cannot act in would make every
        route, logout included, answer 403."""
        if user.is_platform_admin:
            return Landing(None, PLATFORM_ADMIN)
        if user.default_tenant_id is not None:
            role = await self._role_in(user, user.default_tenant_id)
            if role is not None:
                return Landing(user.default_tenant_id, role)
        landing = Landing(None, "none")
        for tenant_id, _ in await MembershipRepository(self.session).practices_of(user.id):
            role = await self._role_in(user, tenant_id)  # the practice is not deleted
            if role is not None:
                landing = Landing(tenant_id, role)
                break
        if user.default_tenant_id != landing.tenant_id:
            user.default_tenant_id = landing.tenant_id
        return landing

    async def _role_in(self, user: User, tenant_id: uuid.UUID) -> str | None:
        async with tenant_context(self.session, tenant_id):
            found = await self.repository.get_membership_and_tenant(user.id, tenant_id)
        return found[0].role.value if found else None

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = utcnow()
        token_hash = hash_refresh_token(refresh_token)
        consumed = await self.repository.consume_refresh_token(token_hash, now)
        if consumed is None:
            await self._handle_unusable_token(token_hash)
            raise RefreshRejected()
        found = await self.repository.get_session_with_user(consumed.session_id)
        if found is None:
            raise RefreshRejected()
        auth_session, user = found
        if (
            auth_session.revoked_at is not None
            or auth_session.expires_at <= now
            or consumed.expires_at <= now
            or not user.is_active
        ):
            raise RefreshRejected()
        auth_session.last_used_at = now
        return await self._issue_pair(user, auth_session)

    async def _handle_unusable_token(self, token_hash: str) -> None:
        """A spent token presented again means it leaked: end the whole family."""
        token = await self.repository.get_refresh_token(token_hash)
        if token is None or token.used_at is None:
            return
        found = await self.repository.get_session_with_user(token.session_id)
        if found is None or found[0].revoked_at is not None:
            return
        auth_session, user = found
        await self.repository.revoke_sessions(
            user.id, utcnow(), "refresh_token_reuse", only=auth_session.id
        )
        async with tenant_context(self.session, user.default_tenant_id):
            await self._audit_user(
                user, "auth.refresh_token_reuse", {"session_id": str(auth_session.id)}
            )

    async def logout(self, principal: Principal, *, everywhere: bool) -> int:
        user_id = principal.require_user()
        only = None if everywhere else principal.require_session()
        revoked = await self.repository.revoke_sessions(
            user_id, utcnow(), "logout_all" if everywhere else "logout", only=only
        )
        await audit.record(
            self.session,
            "auth.logout_all" if everywhere else "auth.logout",
            actor=principal.actor,
            subject_type="user",
            subject_id=user_id,
            details={"sessions": revoked},
        )
        return revoked

    async def list_sessions(self, principal: Principal) -> list[AuthSession]:
        return await self.repository.list_active_sessions(principal.require_user(), utcnow())

    async def revoke_session(self, principal: Principal, session_id: uuid.UUID) -> None:
        revoked = await self.repository.revoke_sessions(
            principal.require_user(), utcnow(), "revoked_by_user", only=session_id
        )
        if revoked == 0:
            raise NotFound("No active session with this id.")
        await audit.record(
            self.session, "auth.session_revoked", actor=principal.actor,
            subject_type="session", subject_id=session_id,
        )  # fmt: skip

    async def revoke_other_sessions(self, user: User, keep: uuid.UUID | None, reason: str) -> None:
        await self.repository.revoke_sessions(user.id, utcnow(), reason, keep=keep)

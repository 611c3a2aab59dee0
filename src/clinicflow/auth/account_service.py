"""Account e-mails: password reset, e-mail verification, and self sign-up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.apikeys.repository import ApiKeyRepository
from clinicflow.audit import service as audit
from clinicflow.auth.models import AccountToken
from clinicflow.auth.repository import AccountTokenRepository, AuthRepository
from clinicflow.auth.tokens import hash_refresh_token, new_opaque_token
from clinicflow.core.errors import NotFound, PermissionDenied
from clinicflow.core.models import new_id, utcnow
from clinicflow.core.security import PasswordHasher
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import tenant_context
from clinicflow.notifications.outbox import JobHandler, Outbox
from clinicflow.notifications.templates import (
    password_changed_email,
    password_reset_email,
    signup_address_taken_email,
    verify_email_email,
)
from clinicflow.tenants.models import Role, Tenant
from clinicflow.tenants.service import add_member, create_tenant
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository
from clinicflow.users.service import create_user, require_acceptable_password

RESET = "password_reset"
RESET_REQUESTED = "reset_requested"  # an outbox job kind (send_reset_link)
VERIFY = "email_verify"
RESET_MINUTES = 30
VERIFY_HOURS = 48


class AccountService:
    def __init__(
        self, session: AsyncSession, settings: Settings, hasher: PasswordHasher, outbox: Outbox
    ) -> None:
        self.session = session
        self.settings = settings
        self.hasher = hasher
        self.outbox = outbox
        self.tokens = AccountTokenRepository(session)
        self.users = UserRepository(session)

    async def forgot_password(self, email: str) -> None:
        """Same answer, same work and so the same time, whether or not the account exists: the
        request only queues a job; the worker looks the address up and, when it has an active
        account, mints the link and queues the e-mail (send_reset_link)."""
        payload = {"email": email.strip().lower()}
        self.outbox.queue_job(self.session, RESET_REQUESTED, payload)

    async def reset_password(self, token: str, new_password: str) -> None:
        """Single use, 30 minutes; every session of the user ends. No automatic login."""
        spent = await self.tokens.consume(hash_refresh_token(token), RESET, utcnow())
        user = await self.users.get(spent.user_id) if spent else None
        if spent is None or user is None:
            raise NotFound("The reset link is invalid, expired or already used.")
        require_acceptable_password(
            new_password, email=user.email, full_name=user.full_name, field="new_password"
        )
        user.password_hash = await self.hasher.hash(new_password)
        user.password_changed_at = utcnow()
        user.failed_login_count = 0
        user.locked_until = None
        await AuthRepository(self.session).revoke_sessions(user.id, utcnow(), "password_reset")
        suspended = await self._suspend_api_keys(user)
        await self._audit(user, "user.password_reset")
        message = password_changed_email(
            to=user.email, full_name=user.full_name, suspended_keys=suspended,
            link=f"{self.settings.frontend_url}/settings/api-keys",
        )  # fmt: skip
        self.outbox.queue_email(self.session, message)

    async def _suspend_api_keys(self, user: User) -> list[str]:
        """Whoever held the account before the reset (someone who pre-claimed the address, or
        stole the password) may have left API keys behind: they stop working until the owner
        confirms them. Keys live in the practice the account was created with."""
        if user.default_tenant_id is None:
            return []
        async with tenant_context(self.session, user.default_tenant_id):
            keys = await ApiKeyRepository(self.session).suspend_created_by(user.id, utcnow())
        return [key.name for key in keys]

    async def send_verification(self, user: User) -> None:
        token = await self._issue(user, VERIFY, timedelta(hours=VERIFY_HOURS))
        link = f"{self.settings.frontend_url}/verify-email?token={token}"
        message = verify_email_email(to=user.email, full_name=user.full_name, link=link)
        self.outbox.queue_email(self.session, message)

    async def verify_email(self, token: str) -> None:
        spent = await self.tokens.consume(hash_refresh_token(token), VERIFY, utcnow())
        user = await self.users.get(spent.user_id) if spent else None
        if spent is None or user is None:
            raise NotFound("The verification link is invalid, expired or already used.")
        user.email_verified_at = user.email_verified_at or utcnow()
        await self._audit(user, "user.email_verified")

    async def register(
        self, *, email: str, password: str, full_name: str, practice_name: str
    ) -> tuple[User, Tenant]:
        if not self.settings.registration_enabled:
            raise PermissionDenied("Self sign-up is disabled on this ClinicFlow.")
        existing = await self.users.get_by_email(email.strip().lower())
        if existing is not None:
            return await self._decoy(existing, password, full_name, practice_name)
        user = await create_user(
            self.session, self.hasher, email=email, password=password, full_name=full_name
        )
        tenant = await create_tenant(self.session, name=practice_name)
        await add_member(self.session, tenant, user, Role.OWNER)
        async with tenant_context(self.session, tenant.id):
            await audit.record(
                self.session, "tenant.registered", actor=audit.Actor(user_id=user.id),
                subject_type="tenant", subject_id=tenant.id,
            )  # fmt: skip
        await self.send_verification(user)
        return user, tenant

    async def _decoy(
        self, existing: User, password: str, full_name: str, practice_name: str
    ) -> tuple[User, Tenant]:
        """A known address gets the answer a new one gets and nothing is stored, so sign-up
        reveals no account; the address's real owner is told by e-mail instead.

        The answer is made the way a sign-up makes it, so neither its shape nor its timing
        tells it apart: the same password checks and hashing, then an account (under an
        address that exists nowhere), a practice, the membership and a verification token
        written with the same flushes, in a savepoint that is rolled back. Ids and creation
        times are what those flushes gave, a database round trip apart as in a real sign-up
        (not one instant and two ids made back to back). Only the audit event is left out: a
        rolled-back event would still be exported as its chain's head."""
        require_acceptable_password(password, email=existing.email, full_name=full_name)
        password_hash = await self.hasher.hash(password)
        savepoint = await self.session.begin_nested()
        try:
            stand_in = User(
                email=f"{new_id().hex}@sign-up.invalid", full_name=full_name.strip(),
                password_hash=password_hash, is_platform_admin=False,
                password_changed_at=utcnow(),
            )  # fmt: skip
            self.users.add(stand_in)
            await self.session.flush()
            practice = await create_tenant(self.session, name=practice_name)
            await add_member(self.session, practice, stand_in, Role.OWNER)
            await self._issue(stand_in, VERIFY, timedelta(hours=VERIFY_HOURS))
            user = User(
                id=stand_in.id, email=existing.email, username=None,
                full_name=stand_in.full_name, is_platform_admin=False, is_active=True,
                email_verified_at=None, locked_until=None, last_login_at=None,
                created_at=stand_in.created_at,
            )  # fmt: skip
            tenant = Tenant(
                id=practice.id, name=practice.name, timezone=practice.timezone,
                read_only=practice.read_only, plan_id=practice.plan_id,
                settings=dict(practice.settings), created_at=practice.created_at,
            )  # fmt: skip
        finally:
            await savepoint.rollback()
        message = signup_address_taken_email(
            to=existing.email, full_name=existing.full_name,
            link=f"{self.settings.frontend_url}/forgot-password",
        )  # fmt: skip
        self.outbox.queue_email(self.session, message)
        return user, tenant

    async def _issue(self, user: User, purpose: str, lifetime: timedelta) -> str:
        return await _issue_token(self.session, user, purpose, lifetime)

    async def _audit(self, user: User, action: str) -> None:
        async with tenant_context(self.session, user.default_tenant_id):
            await audit.record(
                self.session, action, actor=audit.Actor(user_id=user.id),
                subject_type="user", subject_id=user.id,
            )  # fmt: skip


async def _issue_token(session: AsyncSession, user: User, purpose: str, lifetime: timedelta) -> str:
    """A single-use link token, stored hashed; a new one retires the user's unused ones."""
    tokens = AccountTokenRepository(session)
    now = utcnow()
    await tokens.retire_unused(user.id, purpose, now)
    token, token_hash = new_opaque_token("cft_")
    tokens.add(
        AccountToken(
            user_id=user.id, purpose=purpose, token_hash=token_hash, expires_at=now + lifetime
        )
    )
    await session.flush()
    return token


async def send_reset_link(session: AsyncSession, outbox: Outbox, payload: dict[str, Any]) -> None:
    """The worker's half of POST /auth/forgot-password: an active account with the address gets
    a reset link (single use, 30 minutes, stored hashed); any other address, nothing."""
    user = await UserRepository(session).get_by_email(str(payload["email"]))
    if user is None or not user.is_active:
        return
    token = await _issue_token(session, user, RESET, timedelta(minutes=RESET_MINUTES))
    link = f"{outbox.settings.frontend_url}/reset-password?token={token}"
    message = password_reset_email(
        to=user.email, full_name=user.full_name, link=link, minutes_valid=RESET_MINUTES
    )
    outbox.queue_email(session, message)


JOBS: dict[str, JobHandler] = {RESET_REQUESTED: send_reset_link}

"""Queries of sessions and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.auth.models import AccountToken, AuthSession, RefreshToken
from clinicflow.auth.principal_cache import PRINCIPALS_UNCHANGED
from clinicflow.tenants.models import Membership, Tenant
from clinicflow.users.models import User


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, entity: AuthSession | RefreshToken) -> None:
        self.session.add(entity)

    async def get_session_with_user(self, session_id: uuid.UUID) -> tuple[AuthSession, User] | None:
        statement = (
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == session_id)
        )
        row = (await self.session.execute(statement)).first()
        return (row[0], row[1]) if row else None

    async def get_membership_and_tenant(
        self, user_id: uuid.UUID, tenant_id: uuid.UUID
    ) -> tuple[Membership, Tenant] | None:
        """Runs inside the tenant's scope: another tenant's membership is invisible."""
        statement = (
            select(Membership, Tenant)
            .join(Tenant, Tenant.id == Membership.tenant_id)
            .where(
                Membership.user_id == user_id,
                Membership.tenant_id == tenant_id,
                Tenant.deleted_at.is_(None),
            )
        )
        row = (await self.session.execute(statement)).first()
        return (row[0], row[1]) if row else None

    async def consume_refresh_token(self, token_hash: str, now: datetime) -> RefreshToken | None:
        """Atomically spend an unspent token (the UPDATE locks the row): of two concurrent
        refreshes with one token, only one gets it back."""
        statement = (
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .returning(RefreshToken)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        statement = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_active_sessions(self, user_id: uuid.UUID, now: datetime) -> list[AuthSession]:
        statement = (
            select(AuthSession)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
            .order_by(AuthSession.last_used_at.desc())
        )
        return list((await self.session.execute(statement)).scalars())

    async def revoke_sessions(
        self,
        user_id: uuid.UUID,
        now: datetime,
        reason: str,
        *,
        only: uuid.UUID | None = None,
        keep: uuid.UUID | None = None,
    ) -> int:
        statement = update(AuthSession).where(
            AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
        if only is not None:
            statement = statement.where(AuthSession.id == only)
        if keep is not None:
            statement = statement.where(AuthSession.id != keep)
        result = await self.session.execute(statement.values(revoked_at=now, revoked_reason=reason))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def touch_session(self, session_id: uuid.UUID, now: datetime) -> None:
        statement = update(AuthSession).where(AuthSession.id == session_id)
        await self.session.execute(
            statement.values(last_used_at=now),
            execution_options={PRINCIPALS_UNCHANGED: True},
        )


class AccountTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, token: AccountToken) -> None:
        self.session.add(token)

    async def consume(self, token_hash: str, purpose: str, now: datetime) -> AccountToken | None:
        """Spend a live token atomically: single use even under concurrent requests."""
        statement = (
            update(AccountToken)
            .where(
                AccountToken.token_hash == token_hash,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(AccountToken)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def retire_unused(self, user_id: uuid.UUID, purpose: str, now: datetime) -> None:
        """A new link replaces the old ones."""
        await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
            )
            .values(used_at=now)
        )

"""Queries of API keys (tenant-scoped)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.apikeys.models import ApiKey
from clinicflow.auth.principal_cache import PRINCIPALS_UNCHANGED


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, key: ApiKey) -> None:
        self.session.add(key)

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        statement = select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def lock_live(self, key_id: uuid.UUID, now: datetime) -> ApiKey | None:
        """The key while it works (not revoked, not expired), locked until the transaction
        ends so that two changes of it (rotations) take turns."""
        statement = (
            select(ApiKey)
            .where(
                ApiKey.id == key_id,
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_by_hash(self, secret_hash: str) -> ApiKey | None:
        statement = select(ApiKey).where(ApiKey.secret_hash == secret_hash)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_active(self, now: datetime) -> list[ApiKey]:
        statement = (
            select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.created_at.desc())
        )
        keys = (await self.session.execute(statement)).scalars()
        return [key for key in keys if key.expires_at is None or key.expires_at > now]

    async def suspend_created_by(self, user_id: uuid.UUID, now: datetime) -> list[ApiKey]:
        """Suspend the live keys this user created; returns them."""
        statement = (
            update(ApiKey)
            .where(
                ApiKey.created_by == user_id,
                ApiKey.revoked_at.is_(None),
                ApiKey.suspended_at.is_(None),
            )
            .values(suspended_at=now)
            .returning(ApiKey)
        )
        return list((await self.session.execute(statement)).scalars())

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now),
            execution_options={PRINCIPALS_UNCHANGED: True},
        )

"""Queries of user accounts."""

from __future__ import annotations

import uuid

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.security import parameters_of
from clinicflow.users.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        statement = (
            select(User)
            .where(User.id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def password_hash_samples(self) -> list[str]:
        """One stored argon2 hash per parameter set in use (cost changes leave several)."""
        samples: dict[str, str] = {}
        statement = select(User.password_hash).where(User.password_hash.startswith("$argon2"))
        async for stored in await self.session.stream_scalars(statement):
            samples.setdefault(parameters_of(stored), stored)
        return list(samples.values())

    async def get_by_login(self, login: str) -> User | None:
        """By e-mail or username, case-insensitively (both are stored lower-cased)."""
        normalized = login.strip().lower()
        statement = select(User).where(or_(User.email == normalized, User.username == normalized))
        return (await self.session.execute(statement)).scalars().first()

    async def get_by_email(self, email: str) -> User | None:
        statement = select(User).where(User.email == email.strip().lower())
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def count_platform_admins(self) -> int:
        statement = select(func.count()).select_from(User).where(User.is_platform_admin)
        return (await self.session.execute(statement)).scalar_one()

    def add(self, user: User) -> None:
        self.session.add(user)

    async def list_page(self, limit: int, after: uuid.UUID | None) -> list[User]:
        """Ordered by id (UUIDv7, so by creation); one extra row tells if a page follows."""
        statement = select(User).order_by(User.id).limit(limit + 1)
        if after is not None:
            statement = statement.where(User.id > after)
        return list((await self.session.execute(statement)).scalars())

    async def username_taken(self, username: str, other_than: uuid.UUID) -> bool:
        statement = select(User.id).where(User.username == username, User.id != other_than)
        return (await self.session.execute(statement)).first() is not None

    async def clear_default_tenant(self, tenant_id: uuid.UUID) -> None:
        """No login lands in this practice any more (it is being deleted)."""
        await self.session.execute(
            update(User).where(User.default_tenant_id == tenant_id).values(default_tenant_id=None)
        )

"""Queries of n8n connections (tenant-scoped)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.integrations.models import N8nConnection


class N8nConnectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self) -> N8nConnection | None:
        """The practice's connection (the session's tenant scope picks the practice)."""
        return (await self.session.execute(select(N8nConnection))).scalars().first()

    def add(self, connection: N8nConnection) -> None:
        self.session.add(connection)

    async def delete(self, connection: N8nConnection) -> None:
        await self.session.delete(connection)

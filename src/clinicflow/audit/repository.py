"""Queries of the audit trail."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit.models import AuditEvent, AuditLegacyExtent, PlatformAuditEvent

AuditModel = type[AuditEvent] | type[PlatformAuditEvent]
_CHAIN_HEAD = text("SELECT last_seq, last_hash FROM audit_chain_head(:chain)")


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_chain_head(
        self, model: AuditModel, chain: uuid.UUID | None
    ) -> tuple[int, str] | None:
        """Lock the chain for appends until the transaction ends, then read its last link.
        PostgreSQL does both in one round trip (audit_chain_head, migration 0027); SQLite
        writers already hold the file's write lock."""
        if self.session.get_bind().dialect.name == "postgresql":
            row = (await self.session.execute(_CHAIN_HEAD, {"chain": chain})).one()
            return (row.last_seq, row.last_hash) if row.last_seq is not None else None
        found = (
            await self.session.execute(
                select(model.seq, model.hash).order_by(model.seq.desc()).limit(1)
            )
        ).first()
        return (found.seq, found.hash) if found else None

    def add(self, event: AuditEvent | PlatformAuditEvent) -> None:
        self.session.add(event)

    async def page(
        self, model: AuditModel, limit: int, before_seq: int | None, action: str | None
    ) -> list[AuditEvent] | list[PlatformAuditEvent]:
        """Newest first; one extra row tells whether another page follows."""
        statement = select(model).order_by(model.seq.desc()).limit(limit + 1)
        if before_seq is not None:
            statement = statement.where(model.seq < before_seq)
        if action:
            statement = statement.where(model.action == action)
        return list((await self.session.execute(statement)).scalars())  # type: ignore[return-value]

    async def chain(
        self, model: AuditModel, after_seq: int, batch: int
    ) -> list[AuditEvent] | list[PlatformAuditEvent]:
        statement = select(model).where(model.seq > after_seq).order_by(model.seq).limit(batch)
        return list((await self.session.execute(statement)).scalars())  # type: ignore[return-value]

    async def mac_at(self, model: AuditModel, seq: int) -> str | None:
        statement = select(model.hash).where(model.seq == seq)
        found: str | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def legacy_extents(self) -> list[AuditLegacyExtent]:
        statement = select(AuditLegacyExtent).order_by(AuditLegacyExtent.chain)
        return list((await self.session.execute(statement)).scalars())

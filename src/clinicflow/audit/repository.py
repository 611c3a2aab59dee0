"""Queries of the audit trail."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent

AuditModel = type[AuditEvent] | type[PlatformAuditEvent]


def _lock_key(chain: uuid.UUID | None) -> str:
    """The same key the audit_append_* functions lock (migration 0020)."""
    return f"audit:{chain}" if chain else "audit:platform"


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_chain(self, chain: uuid.UUID | None) -> None:
        """Serialise appends to one chain until the transaction ends (SQLite locks the file)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": _lock_key(chain)},
            )

    async def last_link(self, model: AuditModel) -> tuple[int, str] | None:
        row = (
            await self.session.execute(
                select(model.seq, model.hash).order_by(model.seq.desc()).limit(1)
            )
        ).first()
        return (row.seq, row.hash) if row else None

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

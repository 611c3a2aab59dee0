"""Queries of the audit trail."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent

AuditModel = type[AuditEvent] | type[PlatformAuditEvent]


def _lock_key(chain: uuid.UUID | None) -> int:
    digest = hashlib.sha256(b"audit-chain:" + (chain.bytes if chain else b"platform")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_chain(self, chain: uuid.UUID | None) -> None:
        """Serialise appends to one chain until the transaction ends (SQLite locks the file)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(chain)}
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

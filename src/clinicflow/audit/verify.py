"""Walk every audit chain and name the first broken link (`clinicflow audit verify`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent
from clinicflow.audit.repository import AuditModel, AuditRepository
from clinicflow.audit.service import GENESIS_HASH, event_hash
from clinicflow.core.tenancy import tenant_context
from clinicflow.tenants.models import Tenant

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class BrokenLink:
    chain: str  # "platform" or the tenant id
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    chains: int
    events: int
    broken: BrokenLink | None


async def verify_all(session: AsyncSession) -> VerifyReport:
    """Tenant chains are read inside each tenant's scope, so RLS needs no bypass."""
    events, broken = await _verify_chain(session, PlatformAuditEvent, None)
    chains = 1
    tenant_ids = (await session.execute(select(Tenant.id).order_by(Tenant.id))).scalars().all()
    for tenant_id in tenant_ids:
        if broken:
            break
        async with tenant_context(session, tenant_id):
            count, broken = await _verify_chain(session, AuditEvent, tenant_id)
        events += count
        chains += 1
    return VerifyReport(chains, events, broken)


async def _verify_chain(
    session: AsyncSession, model: AuditModel, tenant_id: uuid.UUID | None
) -> tuple[int, BrokenLink | None]:
    repository = AuditRepository(session)
    name = str(tenant_id) if tenant_id else "platform"
    previous_hash, previous_seq, count = GENESIS_HASH, 0, 0
    while batch := await repository.chain(model, previous_seq, _BATCH):
        for event in batch:
            count += 1
            if event.seq != previous_seq + 1:
                return count, BrokenLink(name, event.seq, f"sequence jumps from {previous_seq}")
            if event.prev_hash != previous_hash:
                return count, BrokenLink(name, event.seq, "does not point at the previous event")
            if event_hash(event, tenant_id) != event.hash:
                return count, BrokenLink(name, event.seq, "content does not match its hash")
            previous_hash, previous_seq = event.hash, event.seq
    return count, None

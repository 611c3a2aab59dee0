"""Walk every audit chain and name the first broken link (`clinicflow audit verify`).

A link is broken when its sequence jumps, when it does not point at the previous event, when
its MAC is not the HMAC of its content under the audit key (a forged or rewritten event), or when
it is a legacy (plain SHA-256) event where its chain held none: legacy events are accepted only
up to the last one recorded, under the audit key, by migration 0029 (audit/legacy.py), and the
event there must be the one recorded. A chain without a record holds no legacy event; a record
whose MAC fails was tampered with. A chain that ends before its recorded legacy events, or
before a signed head exported earlier, has lost its tail.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit.heads import Head, chain_name
from clinicflow.audit.legacy import extent_mac
from clinicflow.audit.models import (
    LEGACY_MAC_VERSION,
    MAC_VERSION,
    AuditEvent,
    AuditLegacyExtent,
    PlatformAuditEvent,
)
from clinicflow.audit.repository import AuditModel, AuditRepository
from clinicflow.audit.service import GENESIS_HASH, audit_key, event_mac, legacy_hash
from clinicflow.core.tenancy import tenant_context
from clinicflow.tenants.repository import TenantRepository

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


async def verify_all(
    session: AsyncSession, exported: dict[str, Head] | None = None
) -> VerifyReport:
    """Tenant chains are read inside each tenant's scope, so RLS needs no bypass. `exported`:
    the latest signed head of each chain, from outside the database."""
    heads = exported or {}
    legacy, broken = await _legacy_extents(session)
    if broken:
        return VerifyReport(0, 0, broken)
    events, broken = await _verify_chain(session, PlatformAuditEvent, None, heads, legacy)
    chains = 1
    for tenant_id in await TenantRepository(session).all_ids():
        if broken:
            break
        async with tenant_context(session, tenant_id):
            count, broken = await _verify_chain(session, AuditEvent, tenant_id, heads, legacy)
        events += count
        chains += 1
    return VerifyReport(chains, events, broken)


async def _legacy_extents(
    session: AsyncSession,
) -> tuple[dict[str, AuditLegacyExtent], BrokenLink | None]:
    """Each chain's recorded legacy extent, or the first record whose MAC fails."""
    key = audit_key(session)
    extents = await AuditRepository(session).legacy_extents()
    for extent in extents:
        expected = extent_mac(key, extent.chain, extent.last_seq, extent.last_hash)
        if not hmac.compare_digest(expected, extent.mac):
            reason = (
                "the record of where its legacy events end (migration 0029) is not the audit "
                "key's (tampered)"
            )
            return {}, BrokenLink(extent.chain, extent.last_seq, reason)
    return {extent.chain: extent for extent in extents}, None


async def _verify_chain(
    session: AsyncSession,
    model: AuditModel,
    tenant_id: uuid.UUID | None,
    heads: dict[str, Head],
    legacy_extents: dict[str, AuditLegacyExtent],
) -> tuple[int, BrokenLink | None]:
    repository = AuditRepository(session)
    key = audit_key(session)
    name = chain_name(tenant_id)
    legacy = legacy_extents.get(name)
    previous_hash, previous_seq, count, keyed = GENESIS_HASH, 0, 0, False
    while batch := await repository.chain(model, previous_seq, _BATCH):
        for event in batch:
            count += 1
            problem = _link_problem(
                key, event, tenant_id, previous_seq, previous_hash, keyed, legacy
            )
            if problem is not None:
                return count, BrokenLink(name, event.seq, problem)
            keyed = keyed or event.mac_version == MAC_VERSION
            previous_hash, previous_seq = event.hash, event.seq
    if legacy is not None and previous_seq < legacy.last_seq:
        reason = (
            f"the chain ends at event {previous_seq} but held legacy events up to "
            f"{legacy.last_seq}: they were deleted"
        )
        return count, BrokenLink(name, previous_seq + 1, reason)
    head = heads.get(name)
    if head is not None and head.seq > previous_seq:
        reason = f"the chain ends at event {previous_seq} but was exported up to {head.seq}"
        return count, BrokenLink(name, previous_seq + 1, f"{reason}: its tail was deleted")
    if head is not None and await repository.mac_at(model, head.seq) != head.mac:
        return count, BrokenLink(name, head.seq, "differs from the head exported for it")
    return count, None


def _link_problem(
    key: bytes,
    event: AuditEvent | PlatformAuditEvent,
    tenant_id: uuid.UUID | None,
    previous_seq: int,
    previous_hash: str,
    keyed: bool,
    legacy: AuditLegacyExtent | None,
) -> str | None:
    if event.seq != previous_seq + 1:
        return f"sequence jumps from {previous_seq}"
    if event.prev_hash != previous_hash:
        return "does not point at the previous event"
    if legacy is not None and event.seq == legacy.last_seq and event.hash != legacy.last_hash:
        return "is not the last legacy event recorded for the chain (rewritten)"
    if event.mac_version == MAC_VERSION:
        if not hmac.compare_digest(event_mac(key, event, tenant_id), event.hash):
            return "its MAC is not the audit key's over its content (forged or rewritten)"
        return None
    if event.mac_version != LEGACY_MAC_VERSION:
        return f"unknown MAC version {event.mac_version} (forged)"
    if keyed:
        return "an unkeyed event after the keyed chain began (forged)"
    if legacy is None:
        return (
            "a legacy (unkeyed) event in a chain that held none when the HMAC chain began (forged)"
        )
    if event.seq > legacy.last_seq:
        return (
            "a legacy (unkeyed) event after the chain's legacy events ended at "
            f"{legacy.last_seq} (forged)"
        )
    if legacy_hash(event, tenant_id) != event.hash:
        return "content does not match its hash"
    return None

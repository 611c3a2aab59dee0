"""Writing audit events: same transaction as the action, chained by hash."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent
from clinicflow.audit.repository import AuditRepository
from clinicflow.core.logging import request_meta
from clinicflow.core.models import new_id, utcnow
from clinicflow.core.tenancy import current_tenant

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None


def event_hash(event: AuditEvent | PlatformAuditEvent, tenant_id: uuid.UUID | None) -> str:
    """SHA-256 over a canonical rendering of the event and the previous event's hash."""
    canonical = json.dumps(
        {
            "tenant_id": str(tenant_id) if tenant_id else None,
            "seq": event.seq,
            "occurred_at": event.occurred_at.isoformat(),
            "action": event.action,
            "actor_user_id": str(event.actor_user_id) if event.actor_user_id else None,
            "actor_api_key_id": str(event.actor_api_key_id) if event.actor_api_key_id else None,
            "subject_type": event.subject_type,
            "subject_id": event.subject_id,
            "ip": event.ip,
            "details": event.details,
            "prev_hash": event.prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record(
    session: AsyncSession,
    action: str,
    *,
    actor: Actor | None = None,
    subject_type: str | None = None,
    subject_id: object | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an event to the chain of the session's tenant, or the platform chain if none."""
    tenant_id = current_tenant(session)
    repository = AuditRepository(session)
    await repository.lock_chain(tenant_id)
    model = AuditEvent if tenant_id else PlatformAuditEvent
    last = await repository.last_link(model)
    meta = request_meta.get()
    actor = actor or Actor()
    event = model(
        id=new_id(),
        seq=(last[0] + 1) if last else 1,
        prev_hash=last[1] if last else GENESIS_HASH,
        occurred_at=utcnow(),
        action=action,
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id is not None else None,
        ip=meta.ip if meta else None,
        user_agent=(meta.user_agent or "")[:400] if meta else None,
        request_id=meta.request_id if meta else None,
        details=details or {},
    )
    if isinstance(event, AuditEvent):
        event.tenant_id = tenant_id
    event.hash = event_hash(event, tenant_id)
    repository.add(event)

"""Writing audit events: same transaction as the action, in an HMAC chain.

Each event carries the HMAC-SHA256, under AUDIT_HMAC_KEY (a secret that is not in the
database), of every one of its columns and of the previous event's MAC. Whoever can write to the
database but does not hold the key cannot forge or rewrite an event that `clinicflow audit
verify` accepts. On PostgreSQL the application role cannot INSERT into the audit tables: it
appends through SECURITY DEFINER functions that refuse any event not following the chain's last
one. After each commit the new chain heads are exported, signed, to a file or log the operator
keeps apart from the database, so a dropped tail is detected too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import heads
from clinicflow.audit.models import MAC_VERSION, AuditEvent, PlatformAuditEvent
from clinicflow.audit.repository import AuditRepository
from clinicflow.core.database import AUDIT_KEY_INFO
from clinicflow.core.logging import request_meta
from clinicflow.core.models import new_id, utcnow
from clinicflow.core.tenancy import current_tenant

GENESIS_HASH = "0" * 64
AuditRow = AuditEvent | PlatformAuditEvent


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None


def _text(value: object | None) -> str | None:
    return str(value) if value is not None else None


def canonical(event: AuditRow, tenant_id: uuid.UUID | None) -> bytes:
    """Every column, in one fixed rendering."""
    return json.dumps(
        {
            "id": _text(event.id), "tenant_id": _text(tenant_id), "seq": event.seq,
            "occurred_at": event.occurred_at.isoformat(), "action": event.action,
            "actor_user_id": _text(event.actor_user_id),
            "actor_api_key_id": _text(event.actor_api_key_id),
            "subject_type": event.subject_type, "subject_id": event.subject_id, "ip": event.ip,
            "user_agent": event.user_agent, "request_id": event.request_id,
            "details": event.details, "prev_hash": event.prev_hash,
            "mac_version": event.mac_version,
        },
        sort_keys=True, separators=(",", ":"), default=str,
    ).encode()  # fmt: skip


def event_mac(key: bytes, event: AuditRow, tenant_id: uuid.UUID | None) -> str:
    return hmac.new(key, canonical(event, tenant_id), hashlib.sha256).hexdigest()


def legacy_hash(event: AuditRow, tenant_id: uuid.UUID | None) -> str:
    """The plain SHA-256 of events written before the HMAC chain (mac_version 1); kept only so
    that older chains still verify up to where the HMAC chain takes over."""
    rendering = json.dumps(
        {
            "tenant_id": _text(tenant_id), "seq": event.seq,
            "occurred_at": event.occurred_at.isoformat(), "action": event.action,
            "actor_user_id": _text(event.actor_user_id),
            "actor_api_key_id": _text(event.actor_api_key_id),
            "subject_type": event.subject_type, "subject_id": event.subject_id, "ip": event.ip,
            "details": event.details, "prev_hash": event.prev_hash,
        },
        sort_keys=True, separators=(",", ":"), default=str,
    )  # fmt: skip
    return hashlib.sha256(rendering.encode()).hexdigest()


def audit_key(session: AsyncSession) -> bytes:
    key = session.info.get(AUDIT_KEY_INFO)
    if not isinstance(key, bytes):
        raise RuntimeError("sessions must come from create_database(), which carries the key")
    return key


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
    model = AuditEvent if tenant_id else PlatformAuditEvent
    last = await repository.lock_chain_head(model, tenant_id)
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
    event.mac_version = MAC_VERSION
    event.hash = event_mac(audit_key(session), event, tenant_id)
    if session.get_bind().dialect.name == "postgresql":
        await _append_through_function(session, event, tenant_id)
    else:
        repository.add(event)
    heads.remember(session, tenant_id, event.seq, event.hash)


def _append_statement(function: str) -> TextClause:
    # Built once: a text() parses its parameters on construction (~3% of a booking's time).
    return text(
        f"SELECT {function}(:id, :tenant_id, :seq, :prev_hash, :occurred_at, :action, "
        ":actor_user_id, :actor_api_key_id, :subject_type, :subject_id, :ip, :user_agent, "
        ":request_id, CAST(:details AS jsonb), :hash)"
    )


_APPEND_TENANT = _append_statement("audit_append_tenant")
_APPEND_PLATFORM = _append_statement("audit_append_platform")


async def _append_through_function(
    session: AsyncSession, event: AuditRow, tenant_id: uuid.UUID | None
) -> None:
    """The app role has no INSERT on the audit tables; the function re-checks the link."""
    await session.execute(
        _APPEND_TENANT if tenant_id else _APPEND_PLATFORM,
        {
            "id": event.id, "tenant_id": tenant_id, "seq": event.seq,
            "prev_hash": event.prev_hash, "occurred_at": event.occurred_at,
            "action": event.action, "actor_user_id": event.actor_user_id,
            "actor_api_key_id": event.actor_api_key_id, "subject_type": event.subject_type,
            "subject_id": event.subject_id, "ip": event.ip, "user_agent": event.user_agent,
            "request_id": event.request_id, "details": json.dumps(event.details, default=str),
            "hash": event.hash,
        },
    )  # fmt: skip

"""Append-only, hash-chained audit trail: one chain per tenant, one for the platform."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, IdMixin, JSONDocument, TenantScoped, utcnow

MAC_VERSION = 2  # 1: plain SHA-256 (before migration 0020); 2: HMAC under AUDIT_HMAC_KEY
LEGACY_MAC_VERSION = 1


class AuditFields:
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[uuid.UUID | None]  # no FK: the trail outlives the accounts it names
    actor_api_key_id: Mapped[uuid.UUID | None]
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))  # the HMAC (version 2) or legacy SHA-256 (1)
    mac_version: Mapped[int] = mapped_column(SmallInteger, default=MAC_VERSION)


class AuditEvent(TenantScoped, AuditFields, Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq"),
        Index("ix_audit_events_tenant_id_action", "tenant_id", "action"),
    )


class PlatformAuditEvent(IdMixin, AuditFields, Base):
    """Events with no tenant: platform administration, logins of unknown accounts."""

    __tablename__ = "platform_audit_events"
    __table_args__ = (UniqueConstraint("seq"), Index("ix_platform_audit_events_action", "action"))


class AuditLegacyExtent(Base):
    """Where a chain's legacy events end: the last one's seq and hash when migration 0029 ran,
    MAC'd under the audit key. Only a chain with a row may hold legacy events, and only up to
    it. Written by that migration alone (the application role may only read it)."""

    __tablename__ = "audit_legacy_extents"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)  # tenant id or "platform"
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))

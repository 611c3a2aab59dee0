"""The durable outbox: one row per message to send, written in the transaction that caused it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Index, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, IdMixin, TenantScoped, utcnow


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for `available_at`
    SENDING = "sending"  # claimed by a worker until `lease_expires_at`
    SENT = "sent"
    DEAD = "dead"  # gave up after `max_attempts`; kept for operators to see
    CANCELLED = "cancelled"  # dropped before it was sent (a cancelled appointment's reminder)


class OutboxMessage(IdMixin, Base):
    """A platform table: account e-mails belong to users, not to one practice.

    The payload (it carries live reset and invitation tokens) is AES-GCM encrypted with the
    ENCRYPTION_KEYS ring, bound to the row id, so the queue holds no readable secret.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (Index(None, "status", "available_at"),)

    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int]
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None]
    claim_token: Mapped[uuid.UUID | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    payload_key_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # The practice whose notification mirrors this message (none for account e-mails and
    # jobs), outside the payload so that a message whose payload cannot be opened still shows
    # on it why. Not `tenant_id`: that name means a practice's own, RLS-bound table, and the
    # worker claims every practice's messages.
    practice_id: Mapped[uuid.UUID | None]


class Channel(enum.StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class Notification(TenantScoped, Base):
    """A practice's view of one message: what, to whom, and how delivery went (RLS).

    Same id as its outbox row; the worker mirrors status, attempts and the last error here.
    Patient e-mail text is not kept here: it travels only encrypted, in the outbox payload.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index(None, "tenant_id", "created_at"),
        Index(None, "tenant_id", "appointment_id"),
        Index(None, "tenant_id", "webhook_id"),
    )

    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(2048))
    subject: Mapped[str | None] = mapped_column(String(200))
    event_type: Mapped[str | None] = mapped_column(String(40))
    webhook_id: Mapped[uuid.UUID | None]
    appointment_id: Mapped[uuid.UUID | None]
    patient_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    scheduled_for: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

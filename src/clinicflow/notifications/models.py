"""The durable outbox: one row per message to send, written in the transaction that caused it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Index, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, IdMixin, utcnow


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for `available_at`
    SENDING = "sending"  # claimed by a worker until `lease_expires_at`
    SENT = "sent"
    DEAD = "dead"  # gave up after `max_attempts`; kept for operators to see


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

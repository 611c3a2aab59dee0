"""Webhook subscriptions: where a practice wants its events POSTed, and the signing secret."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, TenantScoped, utcnow


class WebhookSubscription(TenantScoped, Base):
    """The secret is AES-GCM encrypted with ENCRYPTION_KEYS, bound to (tenant, id)."""

    __tablename__ = "webhooks"

    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret_key_id: Mapped[str] = mapped_column(String(32))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    deleted_at: Mapped[datetime | None]

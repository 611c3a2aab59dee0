"""API keys for chatbots and automation (n8n): tenant-owned, scoped, stored as hashes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, TenantScoped, utcnow


class ApiKey(TenantScoped, Base):
    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "secret_hash"),)

    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(24))  # shown in lists to recognise the key
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Set when a new secret replaced this one (which then lives its grace period): once only.
    rotated_at: Mapped[datetime | None]
    # Set by a password reset of the key's creator; the owner confirms the key to lift it.
    suspended_at: Mapped[datetime | None]

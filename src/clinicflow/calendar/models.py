"""A member's private calendar-feed token (only its hash is kept)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, TenantScoped, utcnow


class CalendarToken(TenantScoped, Base):
    __tablename__ = "calendar_tokens"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id"),  # one live feed per member; POST rotates it
        UniqueConstraint("tenant_id", "token_hash"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

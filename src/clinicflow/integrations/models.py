"""A practice's n8n instance: where its automation metrics come from."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, TenantScoped, utcnow


class N8nConnection(TenantScoped, Base):
    """One per practice. The API key is AES-GCM encrypted with ENCRYPTION_KEYS, bound to its
    row (tenant, id); it is never returned."""

    __tablename__ = "n8n_connections"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    base_url: Mapped[str] = mapped_column(String(2048))
    api_key_key_id: Mapped[str] = mapped_column(String(32))
    api_key: Mapped[bytes] = mapped_column(LargeBinary)
    updated_by: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

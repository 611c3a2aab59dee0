"""Invitations to join a practice with a role."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Enum, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, TenantScoped, utcnow
from clinicflow.tenants.models import Role


class Invitation(TenantScoped, Base):
    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("tenant_id", "token_hash"),)

    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
             create_constraint=True, name="invitation_role"),
    )  # fmt: skip
    token_hash: Mapped[str] = mapped_column(String(64))
    invited_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_user_id: Mapped[uuid.UUID | None]
    revoked_at: Mapped[datetime | None]

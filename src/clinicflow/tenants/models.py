"""Plans, tenants (practices) and memberships (a user's role in a tenant)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, IdMixin, JSONDocument, TenantScoped, TimestampMixin


class Role(enum.StrEnum):
    OWNER = "owner"
    ASSISTANT = "assistant"
    VIEWER = "viewer"


class Plan(IdMixin, TimestampMixin, Base):
    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    max_patients: Mapped[int | None]
    max_members: Mapped[int | None]
    api_access: Mapped[bool] = mapped_column(default=True)


class Tenant(IdMixin, TimestampMixin, Base):
    """A practice. Not tenant-scoped itself: it is the scope."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("plans.id", ondelete="RESTRICT"))
    read_only: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    deleted_at: Mapped[datetime | None]


class PracticeCalendar(Protocol):
    """What the agenda needs of a practice: its time zone and settings (working hours,
    reminder lead time), and its name for the messages it sends."""

    name: str
    timezone: str
    settings: dict[str, Any]


class Membership(TenantScoped, TimestampMixin, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
             create_constraint=True, name="role"),
    )  # fmt: skip

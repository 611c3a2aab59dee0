"""Appointments and their status history.

No double booking: on PostgreSQL an exclusion constraint (btree_gist, created by migration 0008)
forbids two active appointments of one professional from overlapping; the service also checks
inside the transaction, which is the guard on SQLite (one writer at a time) and names the conflict.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy import Enum, ForeignKey, ForeignKeyConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, TenantScoped, TimestampMixin, utcnow


class Status(enum.StrEnum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


ACTIVE_STATUSES = frozenset({Status.SCHEDULED, Status.CONFIRMED, Status.ARRIVED, Status.COMPLETED})
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.SCHEDULED: frozenset(
        {Status.CONFIRMED, Status.ARRIVED, Status.CANCELLED, Status.NO_SHOW}
    ),
    Status.CONFIRMED: frozenset({Status.ARRIVED, Status.CANCELLED, Status.NO_SHOW}),
    Status.ARRIVED: frozenset({Status.COMPLETED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.NO_SHOW: frozenset(),
}


def _status_enum(name: str) -> Enum:
    return Enum(
        Status, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e],
        create_constraint=True, name=name,
    )  # fmt: skip


class Appointment(TenantScoped, TimestampMixin, Base):
    __tablename__ = "appointments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"], ondelete="RESTRICT"
        ),
        Index("ix_appointments_agenda", "tenant_id", "professional_id", "start_at"),
        Index("ix_appointments_tenant_id_patient_id", "tenant_id", "patient_id"),
        Index("ix_appointments_tenant_id_series_id", "tenant_id", "series_id"),
    )

    patient_id: Mapped[uuid.UUID]
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    status: Mapped[Status] = mapped_column(
        _status_enum("appointment_status"), default=Status.SCHEDULED
    )
    location: Mapped[str | None] = mapped_column(String(300))
    notes: Mapped[str | None] = mapped_column(Text)  # front desk, never clinical
    allow_overlap: Mapped[bool] = mapped_column(default=False)
    series_id: Mapped[uuid.UUID | None]  # occurrences of one recurring booking share it
    created_by: Mapped[uuid.UUID | None]


class AppointmentView(Protocol):
    """What a page of appointments reads: an `Appointment`, or a row of its columns."""

    id: uuid.UUID
    patient_id: uuid.UUID
    professional_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    status: Status
    location: str | None
    notes: str | None
    allow_overlap: bool
    series_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class AppointmentStatusChange(TenantScoped, Base):
    __tablename__ = "appointment_status_changes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "appointment_id"],
            ["appointments.tenant_id", "appointments.id"],
            ondelete="CASCADE",
        ),
        Index("ix_appointment_status_changes_appointment", "tenant_id", "appointment_id"),
    )

    appointment_id: Mapped[uuid.UUID]
    from_status: Mapped[Status | None] = mapped_column(_status_enum("from_status"))
    to_status: Mapped[Status] = mapped_column(_status_enum("to_status"))
    changed_by: Mapped[uuid.UUID | None]
    # Like changed_by, no foreign key: history outlives a removed member or a deleted key.
    changed_by_api_key_id: Mapped[uuid.UUID | None]
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(500))

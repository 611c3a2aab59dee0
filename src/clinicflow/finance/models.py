"""Financial entries: income and expenses, amounts as exact decimals."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Enum, ForeignKeyConstraint, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, TenantScoped, TimestampMixin


class EntryKind(enum.StrEnum):
    INCOME = "income"
    EXPENSE = "expense"


class FinancialEntry(TenantScoped, TimestampMixin, Base):
    __tablename__ = "financial_entries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"], ondelete="RESTRICT"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "appointment_id"],
            ["appointments.tenant_id", "appointments.id"],
            ondelete="RESTRICT",
        ),
        Index("ix_financial_entries_tenant_id_due_date", "tenant_id", "due_date"),
    )

    kind: Mapped[EntryKind] = mapped_column(
        Enum(EntryKind, native_enum=False, length=10, create_constraint=True, name="entry_kind",
             values_callable=lambda e: [m.value for m in e]),
    )  # fmt: skip
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date]
    paid_at: Mapped[datetime | None]
    method: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[uuid.UUID | None]
    appointment_id: Mapped[uuid.UUID | None]
    description: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None]  # the user who recorded it
    updated_by: Mapped[uuid.UUID | None]  # the user who last changed or deleted it

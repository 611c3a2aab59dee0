"""Medical records: owner-only, versioned (amendments never overwrite), encrypted at rest."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, TenantScoped, TimestampMixin, utcnow


class MedicalRecord(TenantScoped, TimestampMixin, Base):
    __tablename__ = "medical_records"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"], ondelete="RESTRICT"
        ),
        Index("ix_medical_records_tenant_id_patient_id", "tenant_id", "patient_id"),
    )

    patient_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(32), default="note")
    current_version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[uuid.UUID | None]


class RecordVersion(TenantScoped, Base):
    """One version's content: AES-GCM ciphertext and the id of the key that sealed it."""

    __tablename__ = "medical_record_versions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "record_id"],
            ["medical_records.tenant_id", "medical_records.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("tenant_id", "record_id", "version"),
    )

    record_id: Mapped[uuid.UUID]
    version: Mapped[int]
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

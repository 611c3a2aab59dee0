"""Patients of a practice."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import ForeignKeyConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, JSONDocument, TenantOwned, TenantScoped, TimestampMixin


class Patient(TenantScoped, TimestampMixin, Base):
    __tablename__ = "patients"
    __table_args__ = (Index("ix_patients_tenant_id_full_name_id", "tenant_id", "full_name", "id"),)

    full_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date | None]
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    document: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)  # front-desk notes, not clinical
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    deleted_at: Mapped[datetime | None]
    # Lower-cased, accent-free name/e-mail/phone digits/document, kept by the service: the
    # substring fallback for a query without letters or digits (no index; rare).
    search_text: Mapped[str] = mapped_column(Text, default="")


class PatientView(Protocol):
    """What a page of patients reads: a `Patient`, or a row of its columns."""

    id: uuid.UUID
    full_name: str
    birth_date: date | None
    email: str | None
    phone: str | None
    document: str | None
    notes: str | None
    custom_fields: dict[str, Any]
    active: bool
    created_at: datetime
    updated_at: datetime


class PatientSearchTerm(TenantOwned, Base):
    """One word a patient is found by (`clinicflow.patients.search`), kept by the service.

    Each row also carries the term's first HEAD_LENGTH characters (`head`) and the patient's
    `full_name`, so that the primary key `(tenant_id, head, full_name, patient_id, term)` lists
    the patients with a term of that head already in page order, `(full_name, id)`: a search
    reads one word's matches from the cursor on and stops after the page, whatever the size of
    the practice. The key is as unique as `(tenant_id, term, patient_id)` (head and full_name
    follow from them). Every condition is a LEAKPROOF comparison, so an index condition under
    Row-Level Security too. `COLLATE "C"` makes `head`/`term` order byte order (SQLite's BINARY
    already is); `full_name` keeps the collation of `patients.full_name`, the order of the list.
    The second index checks one patient's terms (the other words of a query) and serves the
    cascade.
    """

    __tablename__ = "patient_search_terms"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "patient_id"], ["patients.tenant_id", "patients.id"], ondelete="CASCADE"
        ),
        Index(
            "ix_patient_search_terms_tenant_id_patient_id_term", "tenant_id", "patient_id", "term"
        ),
    )

    head: Mapped[str] = mapped_column(
        Text().with_variant(Text(collation="C"), "postgresql"), primary_key=True, sort_order=-5
    )
    full_name: Mapped[str] = mapped_column(String(200), primary_key=True, sort_order=-4)
    patient_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, sort_order=-3)
    term: Mapped[str] = mapped_column(
        Text().with_variant(Text(collation="C"), "postgresql"), primary_key=True, sort_order=-2
    )

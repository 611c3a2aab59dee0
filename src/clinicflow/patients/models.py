"""Patients of a practice."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.core.models import Base, JSONDocument, TenantScoped, TimestampMixin


class Patient(TenantScoped, TimestampMixin, Base):
    __tablename__ = "patients"
    __table_args__ = (
        Index("ix_patients_tenant_id_full_name_id", "tenant_id", "full_name", "id"),
        # Substring search (LIKE '%q%') on PostgreSQL; a plain index elsewhere.
        Index(
            "ix_patients_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )

    full_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date | None]
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    document: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)  # front-desk notes, not clinical
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    deleted_at: Mapped[datetime | None]
    # Lower-cased, accent-free name/e-mail/phone digits/document, kept by the service.
    search_text: Mapped[str] = mapped_column(Text, default="")

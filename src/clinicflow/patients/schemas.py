"""Request and response bodies of /patients (SPEC §6 field names)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from clinicflow.core.types import PatchBody


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("birth_date cannot be in the future")
    return value


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str = Field(min_length=1, max_length=200)
    birth_date: date | None = None
    email: EmailStr | None = None
    phone: str | None = Field(default=None, min_length=3, max_length=40)
    document: str | None = Field(default=None, max_length=64)
    notes: str | None = Field(default=None, max_length=10_000)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    active: bool = True

    _birth_date = field_validator("birth_date")(_not_in_future)


class PatientUpdate(PatchBody):
    """Partial: only the fields sent change; a custom field set to null is removed."""

    clearable = frozenset({"birth_date", "document", "email", "notes", "phone"})
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    birth_date: date | None = None
    email: EmailStr | None = None
    phone: str | None = Field(default=None, min_length=3, max_length=40)
    document: str | None = Field(default=None, max_length=64)
    notes: str | None = Field(default=None, max_length=10_000)
    custom_fields: dict[str, Any] | None = None
    active: bool | None = None

    _birth_date = field_validator("birth_date")(_not_in_future)


class PatientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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


class PatientList(BaseModel):
    items: list[PatientRead]
    next_cursor: str | None = None

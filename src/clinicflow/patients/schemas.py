"""Request and response bodies of /patients (SPEC §6 field names)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    field_validator,
)

from clinicflow.core.types import Day, PatchBody, StrippedInput


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("birth_date cannot be in the future")
    return value


class PatientCreate(StrippedInput):
    full_name: str = Field(
        min_length=1,
        max_length=200,
        description="The patient's full name.",
        examples=["Maria Oliveira"],
    )
    birth_date: Day | None = Field(
        default=None,
        description="Date of birth (YYYY-MM-DD), not in the future.",
        examples=["1985-04-12"],
    )
    email: EmailStr | None = Field(
        default=None,
        description="Where appointment reminders and e-mails go.",
        examples=["maria@example.com"],
    )
    phone: str | None = Field(
        default=None,
        min_length=3,
        max_length=40,
        description="Phone number as written, 3-40 characters.",
        examples=["+55 11 98765-4321"],
    )
    document: str | None = Field(
        default=None,
        max_length=64,
        description="An identity document number (e.g. CPF), searchable with q.",
        examples=["123.456.789-09"],
    )
    notes: str | None = Field(
        default=None,
        max_length=10_000,
        description="Front-desk notes (not clinical records); hidden from viewers.",
        examples=["Prefers morning appointments."],
    )
    custom_fields: dict[str, Any] = Field(
        default_factory=dict,
        description="Values for the practice's custom patient fields, by key; checked against "
        "their definitions (GET /tenant/practice).",
    )
    active: StrictBool = Field(
        default=True,
        description="Inactive patients stay searchable with active=false (default true).",
    )

    _birth_date = field_validator("birth_date")(_not_in_future)


class PatientUpdate(PatchBody, StrippedInput):
    """Partial: only the fields sent change; a custom field set to null is removed."""

    clearable = frozenset({"birth_date", "document", "email", "notes", "phone"})
    full_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The patient's full name.",
        examples=["Maria Oliveira"],
    )
    birth_date: Day | None = Field(
        default=None,
        description="Date of birth (YYYY-MM-DD), not in the future; null clears it.",
        examples=["1985-04-12"],
    )
    email: EmailStr | None = Field(
        default=None,
        description="E-mail address; null clears it.",
        examples=["maria@example.com"],
    )
    phone: str | None = Field(
        default=None,
        min_length=3,
        max_length=40,
        description="Phone number, 3-40 characters; null clears it.",
        examples=["+55 11 98765-4321"],
    )
    document: str | None = Field(
        default=None,
        max_length=64,
        description="Identity document number; null clears it.",
        examples=["123.456.789-09"],
    )
    notes: str | None = Field(
        default=None,
        max_length=10_000,
        description="Front-desk notes; null clears them.",
        examples=["Prefers morning appointments."],
    )
    custom_fields: dict[str, Any] | None = Field(
        default=None,
        description="Custom field values to change, by key; a key set to null is removed, keys "
        "left out are kept.",
    )
    active: StrictBool | None = Field(
        default=None, description="Mark the patient active or inactive."
    )

    _birth_date = field_validator("birth_date")(_not_in_future)


class PatientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Patient id.")
    full_name: str = Field(description="The patient's full name.")
    birth_date: Day | None = Field(description="Date of birth.")
    email: str | None = Field(description="E-mail address.")
    phone: str | None = Field(description="Phone number.")
    document: str | None = Field(description="Identity document number.")
    notes: str | None = Field(description="Front-desk notes (not clinical records).")
    custom_fields: dict[str, Any] = Field(
        description="Values of the practice's custom patient fields, by key.",
    )
    active: StrictBool = Field(description="Whether the patient is active.")
    created_at: datetime = Field(description="When the patient was registered.")
    updated_at: datetime = Field(description="When the patient was last changed.")


class PatientList(BaseModel):
    items: list[PatientRead] = Field(description="This page's patients, ordered by name.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )

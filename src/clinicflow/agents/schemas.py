"""Inputs and structured results of the /mcp tools (SPEC §3 "AI agents" input names).

Inputs describe what a language model must send; the REST schemas (PatientCreate,
AppointmentCreate, ...) still validate them, so no rule is written twice.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from clinicflow.appointments.models import Status
from clinicflow.appointments.schemas import MAX_MINUTES, MIN_MINUTES
from clinicflow.core.types import Day, Instant

_OFFSET = "ISO 8601 with a UTC offset, e.g. 2026-03-09T14:00:00-03:00"


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class FindPatientInput(ToolInput):
    query: str = Field(
        min_length=1,
        max_length=200,
        description="Part of the patient's name, phone, e-mail or document number. Case and "
        "accents are ignored ('joao' finds 'João').",
    )


class CreatePatientInput(ToolInput):
    full_name: str = Field(min_length=1, max_length=200, description="The patient's full name")
    phone: str | None = Field(default=None, min_length=3, max_length=40, description="Phone")
    email: str | None = Field(default=None, max_length=320, description="E-mail address")
    birth_date: Day | None = Field(default=None, description="YYYY-MM-DD, not in the future")


class AvailabilityInput(ToolInput):
    start: Instant = Field(alias="from", description=f"Start of the search window; {_OFFSET}")
    end: Instant = Field(
        alias="to", description=f"End of the search window (at most 62 days later); {_OFFSET}"
    )
    duration_minutes: int | None = Field(
        default=None,
        ge=MIN_MINUTES,
        le=MAX_MINUTES,
        description="Length of the wanted appointment; default: the practice's usual length",
    )
    professional_id: uuid.UUID | None = Field(
        default=None,
        description="Only when the practice has several professionals (see list_professionals)",
    )


class BookInput(ToolInput):
    patient_id: uuid.UUID = Field(description="The id returned by find_patient or create_patient")
    start: Instant = Field(description=f"When the appointment begins; {_OFFSET}")
    duration_minutes: int | None = Field(
        default=None,
        ge=MIN_MINUTES,
        le=MAX_MINUTES,
        description="Length; default: the practice's usual length",
    )
    professional_id: uuid.UUID | None = Field(
        default=None,
        description="Only when the practice has several professionals (see list_professionals)",
    )


class RescheduleInput(ToolInput):
    appointment_id: uuid.UUID = Field(
        description="The id returned by book_appointment or list_agenda"
    )
    start: Instant = Field(description=f"The new start; the length stays the same; {_OFFSET}")


class CancelInput(ToolInput):
    appointment_id: uuid.UUID = Field(
        description="The id returned by book_appointment or list_agenda"
    )
    reason: str | None = Field(
        default=None, max_length=500, description="Why, in a few words (kept in the history)"
    )


class AgendaInput(ToolInput):
    start: Instant | None = Field(
        default=None,
        alias="from",
        description=f"{_OFFSET}. Default: now with patient_id, else the start of today",
    )
    end: Instant | None = Field(
        default=None,
        alias="to",
        description=f"{_OFFSET}. Default: open-ended with patient_id, else one day after 'from'",
    )
    patient_id: uuid.UUID | None = Field(
        default=None, description="Only this patient's appointments (their upcoming ones)"
    )


class NoInput(ToolInput):
    pass


class PatientOut(BaseModel):
    id: uuid.UUID
    full_name: str
    phone: str | None
    email: str | None
    birth_date: date | None


class PatientMatches(BaseModel):
    items: list[PatientOut]
    more: StrictBool = Field(description="True when more patients match: ask for a narrower query")


class SlotOut(BaseModel):
    start: datetime
    end: datetime


class AvailabilityOut(BaseModel):
    timezone: str = Field(description="The practice's time zone; slot times carry its offset")
    professional_id: uuid.UUID
    duration_minutes: int
    slots: list[SlotOut]
    more: StrictBool = Field(description="True when more free slots exist than listed")


class AppointmentOut(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str | None = Field(default=None, description="Only with the patients:read scope")
    professional_id: uuid.UUID
    start: datetime
    end: datetime
    status: Status


class AgendaOut(BaseModel):
    timezone: str
    items: list[AppointmentOut]
    more: StrictBool = Field(description="True when more appointments exist than listed")

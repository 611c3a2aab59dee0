"""Request and response bodies of /appointments (SPEC §6 field names)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clinicflow.appointments.models import Status
from clinicflow.core.types import Instant, PatchBody

MIN_MINUTES, MAX_MINUTES = 5, 720


class Recurrence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_weeks: int = Field(ge=1, le=52)
    count: int | None = Field(default=None, ge=1, le=104)
    until: date | None = None

    @model_validator(mode="after")
    def _count_or_until(self) -> Recurrence:
        if (self.count is None) == (self.until is None):
            raise ValueError("give exactly one of count or until")
        return self


class AppointmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    start: Instant = Field(description="ISO 8601 with an offset")
    end: Instant | None = None
    duration_minutes: int | None = Field(default=None, ge=MIN_MINUTES, le=MAX_MINUTES)
    professional_id: uuid.UUID | None = Field(default=None, description="Default: you, if owner")
    location: str | None = Field(default=None, max_length=300)
    notes: str | None = Field(default=None, max_length=5000)
    allow_overlap: bool = False
    recurrence: Recurrence | None = None

    @model_validator(mode="after")
    def _end_or_duration(self) -> AppointmentCreate:
        if self.end is not None and self.duration_minutes is not None:
            raise ValueError("give either end or duration_minutes, not both")
        if self.end is not None:
            _check_span(self.start, self.end)
        return self


class AppointmentUpdate(PatchBody):
    clearable = frozenset({"location", "notes"})

    start: Instant | None = None
    end: Instant | None = None
    location: str | None = Field(default=None, max_length=300)
    notes: str | None = Field(default=None, max_length=5000)


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    reason: str | None = Field(default=None, max_length=500)


class AppointmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    patient_id: uuid.UUID
    professional_id: uuid.UUID
    start: datetime = Field(validation_alias="start_at")
    end: datetime = Field(validation_alias="end_at")
    status: Status
    location: str | None
    notes: str | None
    allow_overlap: bool
    series_id: uuid.UUID | None
    created_at: datetime


class SeriesCreated(BaseModel):
    series_id: uuid.UUID
    items: list[AppointmentRead]


class AppointmentList(BaseModel):
    items: list[AppointmentRead]
    next_cursor: str | None = None


class StatusChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: Status | None
    to_status: Status
    changed_by: uuid.UUID | None = Field(description="The member who made the change")
    changed_by_api_key_id: uuid.UUID | None = Field(description="Or the API key (bots, n8n)")
    changed_at: datetime
    reason: str | None


class StatusHistory(BaseModel):
    items: list[StatusChangeRead]
    next_cursor: str | None = None


def _check_span(start: datetime, end: datetime) -> None:
    minutes = (end - start).total_seconds() / 60
    if minutes <= 0:
        raise ValueError("end must be after start")
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ValueError(f"an appointment lasts {MIN_MINUTES} to {MAX_MINUTES} minutes")


def check_span(start: datetime, end: datetime) -> None:
    _check_span(start, end)


class Slot(BaseModel):
    start: datetime
    end: datetime


class Availability(BaseModel):
    timezone: str
    professional_id: uuid.UUID
    duration_minutes: int
    slots: list[Slot]
    searched_until: datetime = Field(
        description="The end of the window searched: `to`, or 62 days after `from` when the "
        "window asked for is longer (ask again from here for more); `from` when `to` is not "
        "after it (an empty window)."
    )

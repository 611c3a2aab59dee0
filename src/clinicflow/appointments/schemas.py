"""Request and response bodies of /appointments (SPEC §6 field names)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from clinicflow.appointments.models import Status
from clinicflow.core.pagination import NEXT_CURSOR
from clinicflow.core.types import Day, Instant, PatchBody

MIN_MINUTES, MAX_MINUTES = 5, 720


class Recurrence(BaseModel):
    # "count or until, exactly one", said in the schema too.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["count"], "properties": {"count": {"type": "integer"}}},
                {"required": ["until"], "properties": {"until": {"type": "string"}}},
            ]
        },
    )

    interval_weeks: int = Field(
        ge=1,
        le=52,
        description="Weeks between occurrences: 1 weekly, 2 fortnightly... (1-52).",
        examples=[1],
    )
    count: int | None = Field(
        default=None,
        ge=1,
        le=104,
        description="How many occurrences, the first included (1-104). Give count or until, not "
        "both.",
        examples=[10],
    )
    until: Day | None = Field(
        default=None,
        description="Last day an occurrence may fall on (YYYY-MM-DD). Give count or until, not "
        "both.",
    )

    @model_validator(mode="after")
    def _count_or_until(self) -> Recurrence:
        if (self.count is None) == (self.until is None):
            raise ValueError("give exactly one of count or until")
        return self


class AppointmentCreate(BaseModel):
    # "end or duration_minutes, not both", said in the schema too.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "not": {
                "required": ["end", "duration_minutes"],
                "properties": {"end": {"type": "string"}, "duration_minutes": {"type": "integer"}},
            }
        },
    )

    patient_id: uuid.UUID = Field(
        description="The patient (from GET /patients or POST /patients).",
        examples=["0190f3c2-7a4e-7b1c-9d2e-3f4a5b6c7d8e"],
    )
    start: Instant = Field(
        description="Start, ISO 8601 with an offset; stored and answered in UTC.",
        examples=["2026-12-01T14:00:00-03:00"],
    )
    end: Instant | None = Field(
        default=None,
        description="End, ISO 8601 with an offset; 5-720 minutes after start. Give end or "
        "duration_minutes, not both.",
    )
    duration_minutes: int | None = Field(
        default=None,
        ge=MIN_MINUTES,
        le=MAX_MINUTES,
        description="Length in minutes (5-720); default: the practice's appointment length.",
        examples=[50],
    )
    professional_id: uuid.UUID | None = Field(
        default=None,
        description="Who the appointment is with (GET /tenant/professionals); default: you if you"
        " are an owner, else the practice's only professional.",
    )
    location: str | None = Field(
        default=None,
        max_length=300,
        description="Room, address or video link.",
        examples=["Room 2"],
    )
    notes: str | None = Field(
        default=None,
        max_length=5000,
        description="Front-desk notes; hidden from viewers.",
        examples=["First consultation."],
    )
    allow_overlap: StrictBool = Field(
        default=False,
        description="Owner only: book even though the professional has another appointment then "
        "(audited). Not for a series.",
    )
    recurrence: Recurrence | None = Field(
        default=None,
        description="Book a weekly series in one request, all or nothing.",
    )

    @model_validator(mode="after")
    def _end_or_duration(self) -> AppointmentCreate:
        if self.end is not None and self.duration_minutes is not None:
            raise ValueError("give either end or duration_minutes, not both")
        if self.end is not None:
            _check_span(self.start, self.end)
        return self


class AppointmentUpdate(PatchBody):
    clearable = frozenset({"location", "notes"})

    start: Instant | None = Field(
        default=None,
        description="New start (ISO 8601 with offset); the length is kept unless end is sent.",
        examples=["2026-12-02T15:00:00-03:00"],
    )
    end: Instant | None = Field(default=None, description="New end (ISO 8601 with offset).")
    location: str | None = Field(
        default=None,
        max_length=300,
        description="Room, address or video link; null clears it.",
        examples=["Room 3"],
    )
    notes: str | None = Field(
        default=None,
        max_length=5000,
        description="Front-desk notes; null clears them.",
        examples=["Moved at the patient's request."],
    )
    allow_overlap: StrictBool = Field(
        default=False,
        description="Owner only, with a move (`start` or `end`): keep the new time even though "
        "the professional has another appointment then (audited). A move without it is checked "
        "against every other appointment and clears the flag; without a move the flag is kept. "
        "Not for a series edit (`scope` following or all).",
    )


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status = Field(
        description="The new status; it must be an allowed move from the current one.",
        examples=["confirmed"],
    )
    reason: str | None = Field(
        default=None,
        max_length=500,
        description="Why, kept in the status history.",
        examples=["Confirmed by phone."],
    )


class AppointmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Appointment id.")
    patient_id: uuid.UUID = Field(description="The patient.")
    professional_id: uuid.UUID = Field(
        description="The professional (a practice owner) the appointment is with.",
    )
    start: datetime = Field(validation_alias="start_at", description="Start, in UTC.")
    end: datetime = Field(validation_alias="end_at", description="End, in UTC.")
    status: Status = Field(description="Current status.")
    location: str | None = Field(description="Room, address or video link.")
    notes: str | None = Field(
        description="Front-desk notes; null for callers without patient access.",
    )
    allow_overlap: StrictBool = Field(description="True when booked as a deliberate overlap.")
    series_id: uuid.UUID | None = Field(
        description="The recurring series this is an occurrence of; null for a single appointment.",
    )
    created_at: datetime = Field(description="When it was booked.")


class SeriesCreated(BaseModel):
    series_id: uuid.UUID = Field(description="The series id shared by every occurrence.")
    items: list[AppointmentRead] = Field(description="Every occurrence booked, by start time.")


class AppointmentList(BaseModel):
    items: list[AppointmentRead] = Field(description="This page's appointments, by start time.")
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
    )


class StatusChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: Status | None = Field(
        description="The status before; null for the initial booking.",
    )
    to_status: Status = Field(description="The status after.")
    changed_by: uuid.UUID | None = Field(description="The member who made the change")
    changed_by_api_key_id: uuid.UUID | None = Field(description="Or the API key (bots, n8n)")
    changed_at: datetime = Field(description="When.")
    reason: str | None = Field(description="Why, as given.")


class StatusHistory(BaseModel):
    items: list[StatusChangeRead] = Field(
        description="The status changes, oldest first (a page of them)."
    )
    next_cursor: str | None = Field(
        default=None,
        description=NEXT_CURSOR,
    )


def _check_span(start: datetime, end: datetime) -> None:
    minutes = (end - start).total_seconds() / 60
    if minutes <= 0:
        raise ValueError("end must be after start")
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ValueError(f"an appointment lasts {MIN_MINUTES} to {MAX_MINUTES} minutes")


def check_span(start: datetime, end: datetime) -> None:
    _check_span(start, end)


class Slot(BaseModel):
    start: datetime = Field(description="Slot start (UTC).")
    end: datetime = Field(description="Slot end (UTC).")


class Availability(BaseModel):
    timezone: str = Field(description="The practice's IANA time zone the working hours are in.")
    professional_id: uuid.UUID = Field(description="Whose agenda the slots are free in.")
    duration_minutes: int = Field(description="The slot length asked for.")
    slots: list[Slot] = Field(description="Free slots, by start time.")
    searched_until: datetime = Field(
        description="The end of the window searched: `to`, or 62 days after `from` when the "
        "window asked for is longer (ask again from here for more); `from` when `to` is not "
        "after it (an empty window)."
    )

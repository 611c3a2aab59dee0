"""The practice's settings (PATCH /tenant), validated before anything is stored."""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema, field_validator

from clinicflow.core.types import PatchBody, TimeZoneName
from clinicflow.patients.custom_fields import CustomFieldDefinition

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
DEFAULT_WORKING_HOURS: dict[str, list[dict[str, str]]] = {
    day: [{"start": "09:00", "end": "18:00"}] for day in WEEKDAYS[:5]
}


class Interval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="HH:MM, local time", pattern=_CLOCK.pattern)
    end: str = Field(description="HH:MM, local time; 24:00 for midnight", pattern=_CLOCK.pattern)

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError("use HH:MM (00:00 to 24:00)")
        return value


def clock_minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _valid_day(intervals: list[Interval]) -> list[Interval]:
    spans = sorted((clock_minutes(i.start), clock_minutes(i.end)) for i in intervals)
    for start, end in spans:
        if end <= start:
            raise ValueError("each interval must end after it starts")
    for (_, first_end), (second_start, _) in pairwise(spans):
        if second_start < first_end:
            raise ValueError("intervals of one day must not overlap")
    return intervals


DayIntervals = Annotated[list[Interval], Field(max_length=12)]


# A decimal string, 0 to 9,999,999,999.99, as the pattern says (the bounds check the same).
Fee = Annotated[
    Decimal,
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$"}),
]


class TenantSettingsUpdate(PatchBody):
    clearable = frozenset({"session_fee"})

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The practice's name.",
        examples=["Clínica Souza"],
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="IANA time zone name.", examples=["America/Sao_Paulo"]
    )
    working_hours: dict[Weekday, DayIntervals] | None = Field(
        default=None,
        json_schema_extra={"propertyNames": {"enum": list[JsonValue](WEEKDAYS)}},
        description="Open intervals per weekday (mon..sun), replacing the current hours; a "
        "weekday left out is closed.",
        examples=[
            {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]}
        ],
    )
    default_appointment_minutes: int | None = Field(
        default=None,
        ge=5,
        le=720,
        description="Length of an appointment booked without end or duration (5-720).",
        examples=[50],
    )
    reminder_lead_minutes: int | None = Field(
        default=None,
        ge=0,
        le=10080,
        description="How long before an appointment its reminder e-mail goes out (0-10080 "
        "minutes).",
        examples=[1440],
    )
    session_fee: Fee | None = Field(
        default=None,
        ge=0,
        max_digits=12,
        decimal_places=2,
        description="Fee charged by POST /appointments/{id}/charge, a decimal; null clears it.",
        examples=["200.00"],
    )
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of the session fee.",
        examples=["BRL"],
    )
    custom_patient_fields: list[CustomFieldDefinition] | None = Field(
        default=None,
        description="The complete list of custom patient field definitions (replaces the current "
        "list).",
        examples=[[{"key": "insurance", "label": "Health insurance", "type": "text"}]],
    )
    calendar_show_patient_names: bool | None = Field(
        default=None, description="Show patient names in members' calendar feeds"
    )

    @field_validator("working_hours")
    @classmethod
    def _days(cls, value: dict[str, list[Interval]] | None) -> dict[str, list[Interval]] | None:
        if value is not None:
            for intervals in value.values():
                _valid_day(intervals)
        return value

    @field_validator("custom_patient_fields")
    @classmethod
    def _unique_keys(
        cls, value: list[CustomFieldDefinition] | None
    ) -> list[CustomFieldDefinition] | None:
        if value is not None and len({field.key for field in value}) != len(value):
            raise ValueError("custom field keys must be unique")
        return value


def weekly_hours(
    stored: dict[str, list[dict[str, str]]] | None,
) -> dict[int, list[tuple[time, time | None]]]:
    """Weekday (0 = Monday) -> open intervals; an end of None means midnight."""
    hours = stored if stored is not None else DEFAULT_WORKING_HOURS
    result: dict[int, list[tuple[time, time | None]]] = {}
    for index, day in enumerate(WEEKDAYS):
        result[index] = [
            (
                time.fromisoformat(i["start"]),
                None if i["end"] == "24:00" else time.fromisoformat(i["end"]),
            )
            for i in hours.get(day, [])
        ]
    return result

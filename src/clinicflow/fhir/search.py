"""FHIR search parameters turned into our list filters (400 OperationOutcome when malformed)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from clinicflow.appointments.repository import AppointmentFilters
from clinicflow.core.errors import BadRequest
from clinicflow.core.types import utc_in_range

_PREFIXES = ("ge", "gt", "le", "lt", "eq")


def _bounds(value: str) -> tuple[str, datetime, datetime]:
    """(prefix, first instant, instant after) of a FHIR date/dateTime search value; a day with
    no time is read in UTC."""
    prefix, raw = (value[:2], value[2:]) if value[:2] in _PREFIXES else ("eq", value)
    try:
        if "T" in raw:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError(raw)
            moment = utc_in_range(moment)  # the same calendar as every other instant
            return prefix, moment, moment
        day = utc_in_range(datetime.combine(date.fromisoformat(raw), time(), UTC))
    except ValueError:
        raise BadRequest(f"date: {value!r} is not a FHIR date (e.g. ge2026-03-01).") from None
    return prefix, day, day + timedelta(days=1)


def appointment_filters(dates: list[str], patient: str | None) -> AppointmentFilters:
    start_from: datetime | None = None
    start_to: datetime | None = None
    for value in dates:
        prefix, first, after = _bounds(value)
        if prefix in ("ge", "eq"):
            start_from = first
        if prefix == "gt":
            start_from = after if after != first else first
        if prefix in ("le", "eq"):
            start_to = after if after != first else first + timedelta(microseconds=1)
        if prefix == "lt":
            start_to = first
    return AppointmentFilters(start_from, start_to, patient_id=_patient_id(patient))


def _patient_id(reference: str | None) -> uuid.UUID | None:
    if reference is None:
        return None
    try:
        return uuid.UUID(reference.removeprefix("Patient/"))
    except ValueError:
        raise BadRequest(f"patient: {reference!r} is not a Patient id.") from None


def resource_id(raw: str) -> uuid.UUID | None:
    """A FHIR id that is not one of ours simply matches nothing (404, like a missing one)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None

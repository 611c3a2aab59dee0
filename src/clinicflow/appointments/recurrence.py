"""Expanding a weekly recurrence on the practice's wall clock (09:00 stays 09:00 across DST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from clinicflow.appointments.schemas import Recurrence

MAX_OCCURRENCES = 104


def occurrences(start: datetime, recurrence: Recurrence, zone: ZoneInfo) -> list[datetime]:
    """UTC starts of each occurrence; raises ValueError for a local time the clock skips."""
    local = start.astimezone(zone).replace(tzinfo=None)
    starts: list[datetime] = []
    while len(starts) < (recurrence.count or MAX_OCCURRENCES):
        wall = local + timedelta(weeks=recurrence.interval_weeks * len(starts))
        if recurrence.until is not None and wall.date() > recurrence.until:
            break
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != wall:
            raise ValueError(f"{wall:%Y-%m-%d %H:%M} does not exist in {zone.key} (clock change)")
        starts.append(instant)
    if (
        recurrence.until is not None
        and len(starts) == MAX_OCCURRENCES
        and (local + timedelta(weeks=recurrence.interval_weeks * MAX_OCCURRENCES)).date()
        <= recurrence.until
    ):
        raise ValueError(f"a series has at most {MAX_OCCURRENCES} occurrences")
    return starts

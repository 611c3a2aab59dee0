"""Free slots from working hours minus busy time, in the practice's time zone.

Slots sit on a wall-clock grid (09:00, 10:00, … local) and last `duration` of real time. On a
daylight-saving change a local time that does not exist is skipped and an ambiguous one takes
its first occurrence, so 09:00 stays 09:00 local whatever the UTC offset that day.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]
MAX_WINDOW = timedelta(days=62)


def searched_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window actually searched: at most MAX_WINDOW from `start` (a client asks again from
    where it stopped); an inverted window is empty rather than an error."""
    return start, max(start, min(end, start + MAX_WINDOW))


def free_slots(
    *,
    zone: ZoneInfo,
    hours: dict[int, list[tuple[time, time | None]]],
    busy: Sequence[Interval],
    window: Interval,
    duration: timedelta,
    step: timedelta | None = None,
) -> list[Interval]:
    start, end = window
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if end <= start:
        return []  # an empty window has no free slot
    if end - start > MAX_WINDOW:
        raise ValueError(f"the window may span at most {MAX_WINDOW.days} days")
    blocked = sorted((b.astimezone(UTC), e.astimezone(UTC)) for b, e in busy)
    ends = [e for _, e in blocked]
    slots = []
    for slot in _candidates(zone, hours, start, end, duration, step or duration):
        if start <= slot[0] and slot[1] <= end and not _overlaps(slot, blocked, ends):
            slots.append((slot[0].astimezone(zone), slot[1].astimezone(zone)))
    return slots


def _candidates(
    zone: ZoneInfo,
    hours: dict[int, list[tuple[time, time | None]]],
    start: datetime,
    end: datetime,
    duration: timedelta,
    step: timedelta,
) -> Iterator[Interval]:
    day = start.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        offset = _steady_offset(zone, day)
        for opens, closes in hours.get(day.weekday(), []):
            closing = _closing(zone, day, closes)
            wall = datetime.combine(day, opens)
            while True:
                if offset is not None and wall.date() == day:
                    instant: datetime | None = (wall - offset).replace(tzinfo=UTC)
                else:
                    instant = _existing_instant(zone, wall)
                if instant is not None:
                    if instant + duration > closing:
                        break
                    yield instant, instant + duration
                wall += step
                if wall.date() > day and closes is not None:
                    break
        day += timedelta(days=1)


def within_hours(
    *, zone: ZoneInfo, hours: dict[int, list[tuple[time, time | None]]], span: Interval
) -> bool:
    """Whether `span` lies inside one of the working-hours intervals of its local day, read as
    free slots read them: opening at the wall-clock time, closing at the wall-clock time (None:
    the next midnight), in the practice's zone."""
    start, end = span
    day = start.astimezone(zone).date()
    return any(
        _instant(zone, day, opens) <= start and end <= _closing(zone, day, closes)
        for opens, closes in hours.get(day.weekday(), [])
    )


def _closing(zone: ZoneInfo, day: date, closes: time | None) -> datetime:
    if closes is None:
        return _instant(zone, day + timedelta(days=1), time())
    return _instant(zone, day, closes)


def _instant(zone: ZoneInfo, day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, zone).astimezone(UTC)


def _steady_offset(zone: ZoneInfo, day: date) -> timedelta | None:
    """The zone's UTC offset on `day` when the clock does not change that day (the same at
    both midnights): every wall time then exists once, at that offset. None on a day of a
    change, whose wall times are each looked up (`_existing_instant`)."""
    offset = datetime.combine(day, time(), zone).utcoffset()
    if offset != datetime.combine(day + timedelta(days=1), time(), zone).utcoffset():
        return None
    return offset


def _existing_instant(zone: ZoneInfo, wall: datetime) -> datetime | None:
    """The UTC instant of a local wall time (first occurrence), or None if the clock skipped it."""
    aware = wall.replace(tzinfo=zone, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def _overlaps(slot: Interval, blocked: list[Interval], ends: list[datetime]) -> bool:
    """Half-open intervals; `blocked` sorted by start (ends searched for the first candidate)."""
    index = bisect.bisect_right(ends, slot[0])
    for begin, finish in blocked[index:]:
        if begin >= slot[1]:
            return False
        if finish > slot[0]:
            return True
    return False

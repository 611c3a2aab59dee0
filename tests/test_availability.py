"""Availability: working hours minus appointments, right across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from clinicflow.appointments.availability import free_slots, searched_window, within_hours
from tests.factories import make_member

NEW_YORK, SAO_PAULO = ZoneInfo("America/New_York"), ZoneInfo("America/Sao_Paulo")
HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def starts(
    zone: ZoneInfo, day: int, opens: time, closes: time, *window: datetime
) -> list[datetime]:
    slots = free_slots(
        zone=zone,
        hours={day: [(opens, closes)]},
        busy=[],
        window=(window[0], window[1]),
        duration=HOUR,
    )
    return [start.astimezone(UTC) for start, _ in slots]


def test_nine_local_moves_in_utc_across_the_new_york_spring_change() -> None:
    friday = starts(NEW_YORK, 4, time(9), time(11), utc(2026, 3, 6), utc(2026, 3, 7))
    monday = starts(NEW_YORK, 0, time(9), time(11), utc(2026, 3, 9), utc(2026, 3, 10))
    assert friday == [utc(2026, 3, 6, 14), utc(2026, 3, 6, 15)]  # EST, UTC-5
    assert monday == [utc(2026, 3, 9, 13), utc(2026, 3, 9, 14)]  # EDT, UTC-4


def test_the_skipped_hour_is_skipped_and_the_repeated_hour_used_once() -> None:
    spring = starts(NEW_YORK, 6, time(1), time(4), utc(2026, 3, 8), utc(2026, 3, 9))
    assert spring == [
        utc(2026, 3, 8, 6),
        utc(2026, 3, 8, 7),
    ]  # 01:00 EST, 03:00 EDT; 02:00 never was
    autumn = starts(NEW_YORK, 6, time(1), time(3), utc(2026, 11, 1), utc(2026, 11, 2))
    assert autumn == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 7)]  # 01:00 EDT, 02:00 EST


def test_sao_paulo_midnight_that_did_not_exist_in_2018_and_plain_utc_minus_3_now() -> None:
    dst_start = starts(SAO_PAULO, 6, time(0), time(3), utc(2018, 11, 4), utc(2018, 11, 5))
    assert dst_start == [utc(2018, 11, 4, 3), utc(2018, 11, 4, 4)]  # 00:00 skipped; 01:00 = UTC-2
    today = starts(SAO_PAULO, 0, time(9), time(11), utc(2026, 3, 9), utc(2026, 3, 10))
    assert today == [utc(2026, 3, 9, 12), utc(2026, 3, 9, 13)]


@pytest.mark.parametrize(
    "name", ["America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe", "Europe/London"]
)
def test_every_local_half_hour_of_a_year_is_offered_once_at_its_instant(name: str) -> None:
    """Open all day, every day of 2018 (Sao Paulo still changed clocks at midnight, Lord Howe
    by half an hour): the slots are exactly the wall times that exist, each at its first
    occurrence, on the days the clock changes and the days it does not."""
    zone, step = ZoneInfo(name), timedelta(minutes=30)
    offered: list[datetime] = []
    start = utc(2018, 1, 1)
    while start < utc(2019, 1, 1):
        window = (start, min(start + timedelta(days=60), utc(2019, 1, 1)))
        hours = {weekday: [(time(0), None)] for weekday in range(7)}
        slots = free_slots(zone=zone, hours=hours, busy=[], window=window, duration=step)
        offered += [slot_start.astimezone(UTC) for slot_start, _ in slots]
        start = window[1]
    expected = []
    wall = datetime(2017, 12, 31)
    while wall < datetime(2019, 1, 2):
        instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        exists = instant.astimezone(zone).replace(tzinfo=None) == wall
        if exists and utc(2018, 1, 1) <= instant and instant + step <= utc(2019, 1, 1):
            expected.append(instant)
        wall += step
    assert offered == sorted(set(expected))


@pytest.mark.parametrize("name", ["America/New_York", "America/Sao_Paulo"])
def test_within_hours_holds_every_offered_slot_and_nothing_just_outside(name: str) -> None:
    """The rule an agent's booking is held to reads working hours as free slots do: each slot
    offered over a year (daylight-saving changes included) is within hours; a span starting
    before opening, ending after closing or on a closed day is not."""
    zone, length = ZoneInfo(name), timedelta(minutes=50)
    hours: dict[int, list[tuple[time, time | None]]] = {
        0: [(time(9), time(12)), (time(14), time(18))], 2: [(time(20), None)]
    }  # fmt: skip
    start = utc(2026, 1, 1)
    offered = 0
    while start < utc(2027, 1, 1):
        window = (start, start + timedelta(days=60))
        for span in free_slots(zone=zone, hours=hours, busy=[], window=window, duration=length):
            assert within_hours(zone=zone, hours=hours, span=span), span
            offered += 1
        start = window[1]
    assert offered > 52 * 10
    monday = datetime(2026, 3, 9, 9, tzinfo=zone)
    inside = [(monday, monday + length), (monday.replace(hour=17, minute=10), monday + 9 * HOUR)]
    outside = [
        (monday - timedelta(minutes=1), monday + length),  # before opening
        (monday.replace(hour=11, minute=30), monday.replace(hour=12, minute=20)),  # past noon
        (monday.replace(hour=11, minute=30), monday.replace(hour=14, minute=20)),  # the break
        (monday + timedelta(days=1), monday + timedelta(days=1) + length),  # Tuesday: closed
    ]
    wednesday_night = datetime(2026, 3, 11, 23, 10, tzinfo=zone)
    inside.append((wednesday_night, wednesday_night + length))  # 24:00 is midnight
    outside.append((wednesday_night, wednesday_night + length + timedelta(minutes=1)))
    assert [within_hours(zone=zone, hours=hours, span=span) for span in inside] == [True] * 3
    assert [within_hours(zone=zone, hours=hours, span=span) for span in outside] == [False] * 5


def test_busy_time_blocks_only_the_slots_it_touches() -> None:
    slots = free_slots(
        zone=SAO_PAULO,
        hours={0: [(time(9), time(12)), (time(13), time(15))]},  # lunch break 12-13
        busy=[(utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 14))],  # 10:30-11:00 local
        window=(utc(2026, 3, 9), utc(2026, 3, 10)),
        duration=HOUR,
    )
    assert [start.strftime("%H:%M") for start, _ in slots] == ["09:00", "11:00", "13:00", "14:00"]
    assert all(start.utcoffset() == timedelta(hours=-3) for start, _ in slots)


@pytest.mark.parametrize(
    ("duration", "window"),
    [
        (timedelta(0), (utc(2026, 3, 9), utc(2026, 3, 10))),
        (HOUR, (utc(2026, 1, 1), utc(2026, 6, 1))),
    ],
)
def test_bad_windows_are_refused(duration: timedelta, window: tuple[datetime, datetime]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        free_slots(zone=SAO_PAULO, hours={}, busy=[], window=window, duration=duration)


def test_an_inverted_window_is_empty_and_a_long_one_is_cut_to_62_days() -> None:
    inverted = (utc(2026, 3, 10), utc(2026, 3, 9))
    assert free_slots(zone=SAO_PAULO, hours={}, busy=[], window=inverted, duration=HOUR) == []
    assert searched_window(*inverted) == (utc(2026, 3, 10), utc(2026, 3, 10))
    assert searched_window(utc(2026, 1, 1), utc(2026, 6, 1)) == (utc(2026, 1, 1), utc(2026, 3, 4))


async def test_availability_api_in_the_practice_zone(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    settings = {
        "timezone": "America/New_York",
        "working_hours": {day: [{"start": "09:00", "end": "12:00"}] for day in ("mon", "fri")},
    }
    assert (
        await client.patch("/api/v1/tenant", json=settings, headers=owner.headers)
    ).status_code == 200

    async def first_slot(day: str) -> str:
        response = await client.get(
            "/api/v1/availability",
            params={"from": f"{day}T00:00:00Z", "to": f"{day}T23:59:00Z", "duration": 60},
            headers=owner.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["timezone"] == "America/New_York"
        return str(response.json()["slots"][0]["start"])

    assert await first_slot("2026-03-06") == "2026-03-06T09:00:00-05:00"
    assert await first_slot("2026-03-09") == "2026-03-09T09:00:00-04:00"


async def test_booked_time_is_not_offered(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    await client.patch(
        "/api/v1/tenant", json={"timezone": "America/Sao_Paulo"}, headers=owner.headers
    )
    patient = (
        await client.post("/api/v1/patients", json={"full_name": "Ana"}, headers=owner.headers)
    ).json()
    await client.post(
        "/api/v1/appointments",
        json={
            "patient_id": patient["id"],
            "start": "2026-03-09T10:00:00-03:00",
            "duration_minutes": 60,
        },
        headers=owner.headers,
    )
    response = await client.get(
        "/api/v1/availability",
        params={
            "from": "2026-03-09T09:00:00-03:00",
            "to": "2026-03-09T13:00:00-03:00",
            "duration": 60,
        },
        headers=owner.headers,
    )
    assert [slot["start"][11:16] for slot in response.json()["slots"]] == [
        "09:00",
        "11:00",
        "12:00",
    ]
    naive = await client.get(
        "/api/v1/availability", params={"from": "2026-03-09T09:00:00", "to": "2026-03-09T13:00:00"},
        headers=owner.headers,
    )  # fmt: skip
    assert naive.status_code == 422  # a time without an offset is ambiguous
    assert naive.json()["errors"][0]["field"] == "from"


async def test_practice_settings_are_validated_and_nothing_bad_is_stored(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    bad = [
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "America"},  # a folder of zones: was a 500 (IsADirectoryError)
        {"timezone": "a" * 300},  # was a 500 (file name too long)
        {"timezone": "posixrules"},  # a file in the zone folder, not an IANA name
        {"working_hours": {"mon": [{"start": "18:00", "end": "09:00"}]}},
        {
            "working_hours": {
                "mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]
            }
        },
        {"working_hours": {"funday": [{"start": "09:00", "end": "12:00"}]}},
        {"working_hours": {"mon": [{"start": "9am", "end": "12:00"}]}},
        {"default_appointment_minutes": 0},
        {"session_fee": "-1.00"},
        {"custom_patient_fields": [{"key": "x", "label": "X", "type": "choice"}]},
        {"unknown_setting": True},
    ]
    for body in bad:
        response = await client.patch("/api/v1/tenant", json=body, headers=owner.headers)
        assert response.status_code == 422, body
    stored = (await client.get("/api/v1/tenant", headers=owner.headers)).json()
    assert (stored["timezone"], stored["settings"]) == ("UTC", {})
    good = await client.patch(
        "/api/v1/tenant",
        json={"name": "Renamed", "session_fee": "180.00", "default_appointment_minutes": 45},
        headers=owner.headers,
    )
    assert good.json()["name"] == "Renamed"
    assert good.json()["settings"] == {"session_fee": "180.00", "default_appointment_minutes": 45}
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    assert (
        await client.patch("/api/v1/tenant", json={"name": "x"}, headers=assistant.headers)
    ).status_code == 403

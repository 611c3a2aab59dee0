"""Recurring series: all or nothing, 09:00 local across DST, edited and cancelled by scope."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from tests.factories import Member, make_member

APPOINTMENTS = "/api/v1/appointments"


async def setup(
    client: httpx.AsyncClient, db: FastAPI, zone: str = "America/New_York"
) -> tuple[Member, str]:
    owner = await make_member(db, role="owner")
    await client.patch("/api/v1/tenant", json={"timezone": zone}, headers=owner.headers)
    patient = (
        await client.post("/api/v1/patients", json={"full_name": "Rui"}, headers=owner.headers)
    ).json()
    return owner, str(patient["id"])


async def series(
    client: httpx.AsyncClient, owner: Member, patient: str, **recurrence: object
) -> httpx.Response:
    return await client.post(
        APPOINTMENTS,
        json={"patient_id": patient, "start": "2026-02-23T09:00:00-05:00", "duration_minutes": 50,
              "recurrence": {"interval_weeks": 1, **recurrence}},
        headers=owner.headers,
    )  # fmt: skip


async def test_weekly_series_keeps_local_time_across_the_clock_change(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, patient = await setup(client, db)
    created = await series(client, owner, patient, count=4)
    assert created.status_code == 201, created.text
    starts = [item["start"] for item in created.json()["items"]]
    # 09:00 in New York every Monday: UTC-5 until 8 March, UTC-4 after.
    assert starts == [
        "2026-02-23T14:00:00Z",
        "2026-03-02T14:00:00Z",
        "2026-03-09T13:00:00Z",
        "2026-03-16T13:00:00Z",
    ]
    series_ids = {uuid.UUID(item["series_id"]) for item in created.json()["items"]}
    assert [series_id.version for series_id in series_ids] == [7]  # like every other id
    until = await client.post(
        APPOINTMENTS,
        json={"patient_id": patient, "start": "2026-06-01T09:00:00-04:00", "duration_minutes": 50,
              "recurrence": {"interval_weeks": 2, "until": "2026-06-29"}},
        headers=owner.headers,
    )  # fmt: skip
    assert [i["start"][:10] for i in until.json()["items"]] == [
        "2026-06-01",
        "2026-06-15",
        "2026-06-29",
    ]


async def test_one_conflicting_occurrence_creates_nothing_and_is_named(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, patient = await setup(client, db)
    blocker = await client.post(
        APPOINTMENTS,
        json={"patient_id": patient, "start": "2026-03-09T09:30:00-04:00", "duration_minutes": 30},
        headers=owner.headers,
    )
    refused = await series(client, owner, patient, count=4)
    assert refused.status_code == 409
    assert refused.json()["conflicting_appointment_id"] == blocker.json()["id"]
    assert refused.json()["occurrence_start"].startswith("2026-03-09T13:00:00")
    listed = await client.get(APPOINTMENTS, headers=owner.headers)
    assert [item["id"] for item in listed.json()["items"]] == [blocker.json()["id"]]
    for bad in ({"count": 2, "until": "2026-04-01"}, {}, {"count": 105}):
        assert (await series(client, owner, patient, **bad)).status_code == 422


async def test_edit_and_cancel_one_following_or_all(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner, patient = await setup(client, db)
    items = (await series(client, owner, patient, count=4)).json()["items"]
    ids = [item["id"] for item in items]

    async def statuses() -> list[str]:
        listed = await client.get(APPOINTMENTS, headers=owner.headers)
        return [item["status"] for item in listed.json()["items"]]

    moved = await client.patch(
        f"{APPOINTMENTS}/{ids[1]}?scope=following", json={"start": "2026-03-02T10:00:00-05:00",
        "location": "Room 3"}, headers=owner.headers,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    listed = (await client.get(APPOINTMENTS, headers=owner.headers)).json()["items"]
    assert [item["start"][11:16] for item in listed] == ["14:00", "15:00", "14:00", "14:00"]
    assert [item["location"] for item in listed] == [None, "Room 3", "Room 3", "Room 3"]
    assert (
        await client.delete(f"{APPOINTMENTS}/{ids[0]}?scope=one", headers=owner.headers)
    ).status_code == 204
    assert await statuses() == ["cancelled", "scheduled", "scheduled", "scheduled"]
    assert (
        await client.delete(f"{APPOINTMENTS}/{ids[2]}?scope=following", headers=owner.headers)
    ).status_code == 204
    assert await statuses() == ["cancelled", "scheduled", "cancelled", "cancelled"]
    assert (
        await client.delete(f"{APPOINTMENTS}/{ids[1]}?scope=all", headers=owner.headers)
    ).status_code == 204
    assert await statuses() == ["cancelled"] * 4
    wrong = await client.delete(f"{APPOINTMENTS}/{ids[1]}?scope=everything", headers=owner.headers)
    assert wrong.status_code == 422


async def test_an_until_before_the_start_is_a_422_naming_it_and_stores_nothing(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, patient = await setup(client, db)
    # The first occurrence is 2026-02-23 09:00 in New York.
    before = await series(client, owner, patient, until="2026-02-22")
    assert before.status_code == 422, before.text
    assert before.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in before.json()["errors"]] == ["recurrence.until"]
    assert "2026-02-22" in before.json()["detail"]
    # A series of one: the first day is the last one allowed.
    same_day = await series(client, owner, patient, until="2026-02-23")
    assert same_day.status_code == 201, same_day.text
    assert len(same_day.json()["items"]) == 1
    for bad in ({"count": 0}, {"count": -1}, {"count": 3, "interval_weeks": 0}):
        assert (await series(client, owner, patient, **bad)).status_code == 422, bad
    listed = await client.get(APPOINTMENTS, headers=owner.headers)
    assert [item["id"] for item in listed.json()["items"]] == [same_day.json()["items"][0]["id"]]


async def agenda(client: httpx.AsyncClient, owner: Member) -> list[tuple[str, str, str | None]]:
    listed = (await client.get(APPOINTMENTS, headers=owner.headers)).json()["items"]
    return [(item["start"][:16], item["status"], item["location"]) for item in listed]


async def test_a_series_edit_leaves_past_occurrences_alone(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, patient = await setup(client, db)
    ids = [item["id"] for item in (await series(client, owner, patient, count=4)).json()["items"]]
    for status in ("arrived", "completed"):
        await client.post(
            f"{APPOINTMENTS}/{ids[0]}/status", json={"status": status}, headers=owner.headers
        )
    await client.delete(f"{APPOINTMENTS}/{ids[1]}", headers=owner.headers)
    moved = await client.patch(
        f"{APPOINTMENTS}/{ids[3]}?scope=all",
        json={"start": "2026-03-16T10:00:00-04:00", "location": "Room 3"}, headers=owner.headers,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"].startswith("2026-03-16T14:00:00")
    assert await agenda(client, owner) == [
        ("2026-02-23T14:00", "completed", None),
        ("2026-03-02T14:00", "cancelled", None),
        ("2026-03-09T14:00", "scheduled", "Room 3"),  # an hour later, like the one named
        ("2026-03-16T14:00", "scheduled", "Room 3"),
    ]
    # The completed occurrence cannot be the one a series edit is made from.
    refused = await client.patch(
        f"{APPOINTMENTS}/{ids[0]}?scope=all", json={"location": "Room 4"}, headers=owner.headers
    )
    assert refused.status_code == 409
    assert [location for *_, location in await agenda(client, owner)] == [
        None, None, "Room 3", "Room 3",
    ]  # fmt: skip


async def test_a_series_moves_onto_its_own_times_but_not_onto_another_appointment(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """The moved set keeps its spacing: a week later, each occurrence takes the time its next
    sibling leaves (on PostgreSQL the exclusion constraint checks each row as it is written)."""
    owner, patient = await setup(client, db, zone="UTC")
    created = await client.post(
        APPOINTMENTS,
        json={"patient_id": patient, "start": "2026-04-06T09:00:00Z", "duration_minutes": 50,
              "recurrence": {"interval_weeks": 1, "count": 3}},
        headers=owner.headers,
    )  # fmt: skip
    ids = [item["id"] for item in created.json()["items"]]

    async def starts() -> list[str]:
        return [start[5:10] for start, *_ in await agenda(client, owner)]

    later = await client.patch(
        f"{APPOINTMENTS}/{ids[0]}?scope=all", json={"start": "2026-04-13T09:00:00Z"},
        headers=owner.headers,
    )  # fmt: skip
    assert later.status_code == 200, later.text
    assert await starts() == ["04-13", "04-20", "04-27"]
    earlier = await client.patch(
        f"{APPOINTMENTS}/{ids[2]}?scope=all", json={"start": "2026-04-20T09:00:00Z"},
        headers=owner.headers,
    )  # fmt: skip
    assert earlier.status_code == 200, earlier.text
    assert await starts() == ["04-06", "04-13", "04-20"]
    # Only the following ones move: the first stays, and the second may not land on it.
    onto_first = await client.patch(
        f"{APPOINTMENTS}/{ids[1]}?scope=following", json={"start": "2026-04-06T09:30:00Z"},
        headers=owner.headers,
    )  # fmt: skip
    assert onto_first.status_code == 409, onto_first.text
    assert onto_first.json()["conflicting_appointment_id"] == ids[0]
    blocker = await client.post(
        APPOINTMENTS,
        json={"patient_id": patient, "start": "2026-04-27T09:20:00Z", "duration_minutes": 30},
        headers=owner.headers,
    )  # fmt: skip
    assert blocker.status_code == 201, blocker.text
    blocked = await client.patch(
        f"{APPOINTMENTS}/{ids[0]}?scope=all", json={"start": "2026-04-13T09:00:00Z"},
        headers=owner.headers,
    )  # fmt: skip
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["conflicting_appointment_id"] == blocker.json()["id"]
    assert blocked.json()["occurrence_start"].startswith("2026-04-27T09:00:00")
    assert await starts() == ["04-06", "04-13", "04-20", "04-27"]  # nothing moved

"""Calendar feed: parses with icalendar, one VEVENT per appointment in range with stable UIDs,
cancelled ones CANCELLED, the practice's VTIMEZONE, names only when the owner enables them, and
a rotated or revoked token answers 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from icalendar import Calendar

from tests.factories import make_member, make_platform_admin, make_tenant
from tests.test_exports import post

TOKEN = "/api/v1/calendar/token"


def day(offset: int) -> str:
    moment = datetime.now(UTC).replace(hour=13, minute=0, second=0, microsecond=0)
    return (moment + timedelta(days=offset)).isoformat()


async def feed(client: httpx.AsyncClient, url: str) -> Calendar:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


async def test_feed_lists_the_agenda_with_cancellations_and_the_practice_zone(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    tenant_id = await make_tenant(db, timezone="America/Sao_Paulo")
    owner = await make_member(db, role="owner", tenant_id=tenant_id)
    patient = await post(client, owner, "patients", {"full_name": "Joana Lima"})
    booked = [
        await post(client, owner, "appointments", {"patient_id": patient["id"], "start": day(n),
                                                     "notes": "front desk only"})
        for n in (1, 2, 3)
    ]  # fmt: skip
    await post(client, owner, "appointments", {"patient_id": patient["id"], "start": day(500)})
    cancelled = await client.post(f"/api/v1/appointments/{booked[1]['id']}/status",
                                  json={"status": "cancelled"}, headers=owner.headers)  # fmt: skip
    assert cancelled.status_code == 200
    issued = await client.post(TOKEN, headers=owner.headers)
    assert issued.status_code == 201, issued.text
    url = issued.json()["url"]
    assert issued.json()["token"] in url

    calendar = await feed(client, url)
    events = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [f"{a['id']}@clinicflow" for a in booked]
    assert [str(e["STATUS"]) for e in events] == ["TENTATIVE", "CANCELLED", "TENTATIVE"]
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["America/Sao_Paulo"]
    assert str(events[0]["DTSTART"].dt.tzinfo) == "America/Sao_Paulo"
    assert events[0]["DTSTART"].dt == datetime.fromisoformat(booked[0]["start"])
    assert all(str(e["SUMMARY"]) == "Appointment" for e in events)
    assert b"Joana" not in calendar.to_ical()
    assert b"front desk" not in calendar.to_ical()
    again = await feed(client, url)
    assert [str(e["UID"]) for e in again.walk("VEVENT")] == [str(e["UID"]) for e in events]

    shown = await client.patch("/api/v1/tenant", json={"calendar_show_patient_names": True},
                               headers=owner.headers)  # fmt: skip
    assert shown.status_code == 200, shown.text
    named = (await feed(client, url)).walk("VEVENT")
    assert str(named[0]["SUMMARY"]) == "Appointment: Joana Lima"


async def test_rotated_and_revoked_tokens_get_404_and_feeds_stay_in_their_practice(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    other = await make_member(db, role="owner")
    theirs = await post(client, other, "patients", {"full_name": "Theirs"})
    await post(client, other, "appointments", {"patient_id": theirs["id"], "start": day(1)})

    first = (await client.post(TOKEN, headers=owner.headers)).json()["url"]
    assert (await feed(client, first)).walk("VEVENT") == []
    second = (await client.post(TOKEN, headers=owner.headers)).json()["url"]
    assert (await client.get(first)).status_code == 404
    assert (await client.get(second)).status_code == 200
    revoked = await client.delete(TOKEN, headers=owner.headers)
    assert revoked.status_code == 204
    assert (await client.get(second)).status_code == 404
    assert (await client.delete(TOKEN, headers=owner.headers)).status_code == 404
    for junk in ("cfc_nonsense-token", "x" * 40):
        response = await client.get("/api/v1/calendar.ics", params={"token": junk})
        assert response.status_code == 404


async def test_a_feed_ends_with_its_members_membership_and_account(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """A removed member, or a deactivated account, can no longer revoke the feed: it stops
    answering by itself (404, as a revoked one)."""
    owner = await make_member(db, role="owner")
    partner = await make_member(db, role="owner", tenant_id=owner.tenant_id)
    admin = await make_platform_admin(db)
    removed_url = (await client.post(TOKEN, headers=partner.headers)).json()["url"]
    kept_url = (await client.post(TOKEN, headers=owner.headers)).json()["url"]
    assert (await client.get(removed_url)).status_code == 200
    removal = await client.delete(
        f"/api/v1/tenant/members/{partner.user_id}", headers=owner.headers
    )
    assert removal.status_code == 204
    assert (await client.get(removed_url)).status_code == 404
    assert (await client.get(kept_url)).status_code == 200
    deactivated = await client.delete(f"/api/v1/users/{owner.user_id}", headers=admin.headers)
    assert deactivated.status_code == 204
    assert (await client.get(kept_url)).status_code == 404

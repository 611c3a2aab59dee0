"""The agenda: never double-booked (also under 50 concurrent requests), statuses, isolation."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from clinicflow.appointments.models import Appointment
from clinicflow.appointments.repository import AppointmentRepository
from clinicflow.audit.models import AuditEvent
from clinicflow.core.tenancy import set_session_tenant
from tests.factories import Member, make_api_key, make_member

APPOINTMENTS = "/api/v1/appointments"
NINE = "2026-03-09T09:00:00-03:00"


async def patient_of(client: httpx.AsyncClient, member: Member, name: str = "Maria") -> str:
    response = await client.post(
        "/api/v1/patients", json={"full_name": name}, headers=member.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def book(
    client: httpx.AsyncClient, member: Member, patient: str, **body: object
) -> httpx.Response:
    payload = {"patient_id": patient, "start": NINE, "duration_minutes": 50, **body}
    return await client.post(APPOINTMENTS, json=payload, headers=member.headers)


async def count_rows(db: FastAPI, tenant_id: uuid.UUID | None) -> int:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, tenant_id)
        return (await session.execute(select(func.count()).select_from(Appointment))).scalar_one()


async def test_book_read_list_and_the_viewer_sees_no_notes(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    viewer = await make_member(db, role="viewer", tenant_id=owner.tenant_id)
    patient = await patient_of(client, owner)
    booked = await book(client, owner, patient, notes="Bring referral", location="Room 2")
    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert body["professional_id"] == str(owner.user_id)  # the owner books for themselves
    assert body["start"] == "2026-03-09T12:00:00Z" or body["start"].startswith(
        "2026-03-09T12:00:00"
    )
    assert body["end"].startswith("2026-03-09T12:50:00")
    assert body["status"] == "scheduled"
    seen = await client.get(f"{APPOINTMENTS}/{body['id']}", headers=viewer.headers)
    assert seen.status_code == 200
    assert seen.json()["notes"] is None
    listed = await client.get(
        APPOINTMENTS,
        params={"from": "2026-03-09T00:00:00-03:00", "to": "2026-03-10T00:00:00-03:00"},
        headers=owner.headers,
    )
    assert [item["notes"] for item in listed.json()["items"]] == ["Bring referral"]
    naive = await client.get(
        APPOINTMENTS, params={"from": "2026-03-09T00:00:00"}, headers=owner.headers
    )
    assert naive.status_code == 422  # a time without an offset is ambiguous
    assert naive.json()["errors"][0]["field"] == "from"


async def test_fifty_concurrent_bookings_of_one_slot_give_exactly_one(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patients = [await patient_of(client, owner, f"P{n}") for n in range(5)]
    starts = [f"2026-03-09T09:{minute:02d}:00-03:00" for minute in range(0, 50)]
    responses = await asyncio.gather(
        *(
            book(client, owner, patients[n % 5], start=start, duration_minutes=60)
            for n, start in enumerate(starts)
        )
    )
    codes = sorted(response.status_code for response in responses)
    assert codes.count(201) == 1
    assert codes.count(409) == 49
    assert await count_rows(db, owner.tenant_id) == 1
    winner = next(r for r in responses if r.status_code == 201).json()["id"]
    named = [r.json()["conflicting_appointment_id"] for r in responses if r.status_code == 409]
    assert set(named) == {winner}


async def test_the_exclusion_constraint_refuses_an_overlap_the_check_missed(
    client: httpx.AsyncClient, db: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database's constraint, not only the service's check, keeps the agenda whole: with
    the check blinded, the overlapping booking is still a 409 and stores nothing."""
    owner = await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    assert (await book(client, owner, patient)).status_code == 201

    async def sees_nothing(*args: object, **kwargs: object) -> None:
        return None

    monkeypatch.setattr(AppointmentRepository, "first_overlap", sees_nothing)
    refused = await book(client, owner, patient, start="2026-03-09T09:30:00-03:00")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert await count_rows(db, owner.tenant_id) == 1


async def test_a_cancelled_appointment_frees_its_slot(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    first = await book(client, owner, patient)
    clash = await book(client, owner, patient, start="2026-03-09T09:30:00-03:00")
    assert clash.status_code == 409
    assert clash.json()["conflicting_appointment_id"] == first.json()["id"]
    touching = await book(client, owner, patient, start="2026-03-09T09:50:00-03:00")
    assert touching.status_code == 201  # [start, end) ranges: back-to-back is fine
    assert (
        await client.delete(f"{APPOINTMENTS}/{first.json()['id']}", headers=owner.headers)
    ).status_code == 204
    again = await book(
        client, owner, patient, start="2026-03-09T09:00:00-03:00", duration_minutes=45
    )
    assert again.status_code == 201


async def test_status_transitions_and_history(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    appointment = (await book(client, owner, await patient_of(client, owner))).json()["id"]
    path = f"{APPOINTMENTS}/{appointment}/status"
    for status in ("confirmed", "arrived", "completed"):
        moved = await client.post(path, json={"status": status}, headers=assistant.headers)
        assert moved.status_code == 200, moved.text
    backwards = await client.post(path, json={"status": "scheduled"}, headers=owner.headers)
    assert backwards.status_code == 409
    assert (backwards.json()["from"], backwards.json()["to"]) == ("completed", "scheduled")
    unknown = await client.post(path, json={"status": "teleported"}, headers=owner.headers)
    assert unknown.status_code == 422
    history = await client.get(f"{APPOINTMENTS}/{appointment}/history", headers=owner.headers)
    steps = [(h["from_status"], h["to_status"]) for h in history.json()["items"]]
    assert steps == [
        (None, "scheduled"),
        ("scheduled", "confirmed"),
        ("confirmed", "arrived"),
        ("arrived", "completed"),
    ]
    assert history.json()["items"][1]["changed_by"] == str(assistant.user_id)


async def test_only_the_owner_books_a_deliberate_overlap_and_it_is_audited(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    patient = await patient_of(client, owner)
    await book(client, owner, patient)
    refused = await book(
        client, assistant, patient, professional_id=str(owner.user_id), allow_overlap=True
    )
    assert refused.status_code == 403
    allowed = await book(client, owner, patient, allow_overlap=True)
    assert allowed.status_code == 201
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        actions = (await session.execute(select(AuditEvent.action))).scalars().all()
    assert "appointment.overlap_allowed" in actions


async def test_bad_bookings_are_4xx_and_store_nothing(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, stranger = await make_member(db, role="owner"), await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    foreign_patient = await patient_of(client, stranger)
    cases = [
        {"start": NINE, "end": "2026-03-09T08:00:00-03:00", "duration_minutes": None},
        {"start": "2026-03-09T09:00:00"},
        {"duration_minutes": 0},
        {"duration_minutes": 10_000},
        {"end": "2026-03-09T10:00:00-03:00"},  # end and duration both given
    ]
    # A reference to something the practice does not have is a 404 naming the field.
    missing = [
        {"patient_id": foreign_patient},
        {"patient_id": str(uuid.uuid4())},
        {"professional_id": str(stranger.user_id)},
    ]
    for changes, status in [(case, 422) for case in cases] + [(case, 404) for case in missing]:
        payload = {"patient_id": patient, "start": NINE, "duration_minutes": 50, **changes}
        payload = {key: value for key, value in payload.items() if value is not None}
        response = await client.post(APPOINTMENTS, json=payload, headers=owner.headers)
        assert response.status_code == status, (changes, response.text)
        if status == 404:
            assert response.json()["errors"][0]["field"] == next(iter(changes))
    assert await count_rows(db, owner.tenant_id) == 0


async def test_another_practices_appointment_is_404(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner, stranger = await make_member(db, role="owner"), await make_member(db, role="owner")
    theirs = (await book(client, stranger, await patient_of(client, stranger))).json()["id"]
    for method, suffix, body in (
        ("GET", "", None), ("PATCH", "", {"notes": "x"}), ("DELETE", "", None),
        ("POST", "/status", {"status": "confirmed"}), ("GET", "/history", None),
    ):  # fmt: skip
        response = await client.request(
            method, f"{APPOINTMENTS}/{theirs}{suffix}", json=body, headers=owner.headers
        )
        assert response.status_code == 404, (method, suffix)


async def test_rescheduling_checks_the_new_slot(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    first = (await book(client, owner, patient)).json()["id"]
    second = (await book(client, owner, patient, start="2026-03-09T11:00:00-03:00")).json()["id"]
    onto_first = await client.patch(
        f"{APPOINTMENTS}/{second}",
        json={"start": "2026-03-09T09:20:00-03:00"},
        headers=owner.headers,
    )
    assert onto_first.status_code == 409
    assert onto_first.json()["conflicting_appointment_id"] == first
    moved = await client.patch(
        f"{APPOINTMENTS}/{second}",
        json={"start": "2026-03-09T14:00:00-03:00"},
        headers=owner.headers,
    )
    assert moved.status_code == 200
    assert moved.json()["end"].startswith("2026-03-09T17:50:00")  # the duration is kept


async def test_an_agent_books_with_an_api_key(client: httpx.AsyncClient, db: FastAPI) -> None:
    owner = await make_member(db, role="owner")
    patient = await patient_of(client, owner)
    key = await make_api_key(db, owner.tenant_id, ["appointments:write"])  # type: ignore[arg-type]
    booked = await client.post(
        APPOINTMENTS,
        json={"patient_id": patient, "start": NINE, "duration_minutes": 30,
              "professional_id": str(owner.user_id)},
        headers={"X-API-Key": key},
    )  # fmt: skip
    assert booked.status_code == 201, booked.text
    reading = await client.get(APPOINTMENTS, headers={"X-API-Key": key})
    assert reading.status_code == 403  # appointments:read was not granted


async def test_a_deliberate_overlap_still_blocks_later_bookings_and_moves(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """An appointment booked with allow_overlap is on the agenda like any other: a later
    booking or move onto it is refused and names it, unless that request is itself an owner's
    deliberate overlap. A move without allow_overlap is checked and clears the flag."""
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    patient = await patient_of(client, owner)
    mine = {"professional_id": str(owner.user_id)}
    a = await book(client, owner, patient, start="2026-03-09T10:00:00-03:00", duration_minutes=60)
    b = await book(
        client, owner, patient, start="2026-03-09T10:30:00-03:00", duration_minutes=60,
        allow_overlap=True,
    )  # fmt: skip
    assert (a.status_code, b.status_code) == (201, 201), b.text
    b_id = b.json()["id"]
    c = await book(
        client, assistant, patient, start="2026-03-09T11:00:00-03:00", duration_minutes=30, **mine
    )
    assert c.status_code == 409, c.text
    assert c.json()["conflicting_appointment_id"] == b_id
    d = await book(
        client, assistant, patient, start="2026-03-09T14:00:00-03:00", duration_minutes=60, **mine
    )
    assert d.status_code == 201, d.text
    onto_d = await client.patch(
        f"{APPOINTMENTS}/{b_id}", json={"start": "2026-03-09T14:15:00-03:00"},
        headers=assistant.headers,
    )  # fmt: skip
    assert onto_d.status_code == 409, onto_d.text
    assert onto_d.json()["conflicting_appointment_id"] == d.json()["id"]
    not_theirs = await client.patch(
        f"{APPOINTMENTS}/{b_id}", json={"start": "2026-03-09T14:15:00-03:00",
        "allow_overlap": True}, headers=assistant.headers,
    )  # fmt: skip
    assert not_theirs.status_code == 403
    # Editing or confirming an appointment that a deliberate overlap meets moves nothing.
    noted = await client.patch(
        f"{APPOINTMENTS}/{b_id}", json={"notes": "kept"}, headers=assistant.headers
    )
    assert (noted.status_code, noted.json()["allow_overlap"]) == (200, True)
    confirmed = await client.post(
        f"{APPOINTMENTS}/{a.json()['id']}/status", json={"status": "confirmed"},
        headers=assistant.headers,
    )  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    away = await client.patch(
        f"{APPOINTMENTS}/{b_id}", json={"start": "2026-03-09T16:00:00-03:00"},
        headers=assistant.headers,
    )  # fmt: skip
    assert away.status_code == 200, away.text
    assert away.json()["allow_overlap"] is False  # an ordinary appointment again
    deliberate = await client.patch(
        f"{APPOINTMENTS}/{b_id}", json={"start": "2026-03-09T14:30:00-03:00",
        "allow_overlap": True}, headers=owner.headers,
    )  # fmt: skip
    assert deliberate.status_code == 200, deliberate.text
    assert deliberate.json()["allow_overlap"] is True
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        audited = (
            await session.execute(
                select(AuditEvent.subject_id).where(
                    AuditEvent.action == "appointment.overlap_allowed"
                )
            )
        ).scalars()
        assert [str(subject) for subject in audited] == [b_id, b_id]
        stored = await session.get(Appointment, (owner.tenant_id, uuid.UUID(b_id)))
        assert stored is not None
        assert stored.start_at.isoformat().startswith("2026-03-09T17:30:00")
    assert await count_rows(db, owner.tenant_id) == 3


async def test_the_professional_must_be_one_of_the_practices_owners(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """Appointments are with the people GET /tenant/professionals lists (the owners): naming
    an assistant or a viewer is answered like naming a stranger, a 404 on professional_id,
    for a booking (an assistant naming themselves included) and for availability."""
    owner = await make_member(db, role="owner")
    assistant = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    viewer = await make_member(db, role="viewer", tenant_id=owner.tenant_id)
    patient = await patient_of(client, owner)
    listed = await client.get("/api/v1/tenant/professionals", headers=assistant.headers)
    assert [item["id"] for item in listed.json()["items"]] == [str(owner.user_id)]
    for caller, named in ((owner, assistant), (owner, viewer), (assistant, assistant)):
        refused = await book(client, caller, patient, professional_id=str(named.user_id))
        assert refused.status_code == 404, refused.text
        assert refused.json()["errors"][0]["field"] == "professional_id"
        slots = await client.get(
            "/api/v1/availability",
            params={"from": NINE, "to": "2026-03-10T09:00:00-03:00",
                    "professional_id": str(named.user_id)},
            headers=caller.headers,
        )  # fmt: skip
        assert slots.status_code == 404, slots.text
        assert slots.json()["errors"][0]["field"] == "professional_id"
    assert await count_rows(db, owner.tenant_id) == 0
    booked = await book(client, assistant, patient, professional_id=str(owner.user_id))
    assert booked.status_code == 201, booked.text
    by_default = await book(client, assistant, patient, start="2026-03-09T11:00:00-03:00")
    assert by_default.json()["professional_id"] == str(owner.user_id)  # the only owner

"""Hot list pages are written straight from their rows (`core.pagination.page_response`): the
bytes must be the ones the response models would write for the same rows, hard values
included, since clients and the OpenAPI document know only the models."""

from __future__ import annotations

import uuid
from collections import namedtuple
from datetime import UTC, date, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, text

from clinicflow.appointments.models import Appointment, Status
from clinicflow.appointments.schemas import AppointmentRead
from clinicflow.core.pagination import page_response, pydantic_page
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.patients.models import Patient
from clinicflow.patients.repository import PatientFilters, PatientRepository
from clinicflow.patients.schemas import PatientRead
from tests.factories import Member, make_member

# Values whose JSON is easy to get subtly wrong: whole seconds (no fraction written), floats,
# nested and non-ASCII custom fields, nulls.
WHOLE_SECOND = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
WITH_MICROS = datetime(2026, 3, 9, 14, 0, 0, 123400, tzinfo=UTC)
PatientRow = namedtuple("PatientRow", list(PatientRead.model_fields))
CUSTOM = {"weight": 72.5, "tiny": 1e-7, "visits": [1, 2], "nota": "São Paulo ✓", "x": None}


async def _patients(db: FastAPI, member: Member, custom: dict[str, object]) -> list[uuid.UUID]:
    async with db.state.database.sessionmaker() as session, session.begin():
        await set_session_tenant(session, member.tenant_id)
        patients = [
            Patient(full_name="Ana Lima", birth_date=date(1990, 1, 31), email="ana@example.com",
                    phone="+55 11 5555-0000", document="123", notes="Prefers mornings",
                    custom_fields=custom, created_at=WHOLE_SECOND, updated_at=WITH_MICROS),
            Patient(full_name="Bruno Costa", custom_fields={}, active=False,
                    created_at=WITH_MICROS, updated_at=WHOLE_SECOND),
            Patient(full_name="Élodie Martins", custom_fields={"nested": {"a": [True, 0.1]}}),
        ]  # fmt: skip
        session.add_all(patients)
        await session.flush()
        return [patient.id for patient in patients]


async def _models_page(db: FastAPI, member: Member, model: type, limit: int | None) -> list:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, member.tenant_id)
        order = (
            (Patient.full_name, Patient.id)
            if model is Patient
            else (Appointment.start_at, Appointment.id)
        )
        statement = select(model).order_by(*order).limit(limit)
        return list((await session.execute(statement)).scalars())


async def test_a_patient_page_is_written_as_the_models_write_it(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    await _patients(db, owner, CUSTOM)

    first = await client.get("/api/v1/patients", params={"limit": 2}, headers=owner.headers)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    cursor = first.json()["next_cursor"]
    expected = pydantic_page(
        PatientRead, await _models_page(db, owner, Patient, 2), cursor, hidden=()
    )
    assert first.content == expected

    rest = await client.get(
        "/api/v1/patients", params={"limit": 2, "cursor": cursor}, headers=owner.headers
    )
    everyone = await _models_page(db, owner, Patient, None)
    assert rest.content == pydantic_page(PatientRead, everyone[2:], None, hidden=())


async def test_a_search_that_reads_entities_is_written_as_the_models_write_it(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """A one-letter search reads patients as entities, not column rows: the same bytes."""
    owner = await make_member(db, role="owner")
    for name in ("Bruno Costa", "Beatriz Lima", "Ana Souza"):
        created = await client.post(
            "/api/v1/patients",
            json={"full_name": name, "email": f"{name[0].lower()}@example.com"},
            headers=owner.headers,
        )
        assert created.status_code == 201

    searched = await client.get("/api/v1/patients", params={"q": "b"}, headers=owner.headers)

    found = [p for p in await _models_page(db, owner, Patient, None) if p.full_name[0] == "B"]
    assert len(found) == 2
    assert searched.content == pydantic_page(PatientRead, found, None, hidden=())


def test_a_value_past_what_orjson_writes_is_written_as_the_models_write_it() -> None:
    """JSON allows any integer, and the embedded database's JSON reader keeps one past 64 bits
    as an int (PostgreSQL's, orjson, reads it as a float): orjson cannot write it, pydantic
    can, so such a page is not a 500."""
    row = PatientRow(
        id=uuid.uuid4(), full_name="Ana", birth_date=None, email=None, phone=None,
        document=None, notes=None, custom_fields={"huge": 2**70, "negative": -(2**65)},
        active=True, created_at=WHOLE_SECOND, updated_at=WITH_MICROS,
    )  # fmt: skip

    response = page_response(PatientRead, [row], "abc")

    assert response.body == pydantic_page(PatientRead, [row], "abc", hidden=())
    assert b'"huge":1180591620717411303424' in response.body


async def test_an_agenda_page_is_written_as_the_models_write_it_notes_hidden_from_viewers(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    viewer = await make_member(db, tenant_id=owner.tenant_id, role="viewer")
    patient_ids = await _patients(db, owner, CUSTOM)
    async with db.state.database.sessionmaker() as session, session.begin():
        await set_session_tenant(session, owner.tenant_id)
        for index, (start, status) in enumerate(
            [(WHOLE_SECOND, Status.SCHEDULED), (WITH_MICROS + timedelta(hours=2), Status.NO_SHOW)]
        ):
            session.add(
                Appointment(
                    patient_id=patient_ids[index],
                    professional_id=owner.user_id,
                    start_at=start,
                    end_at=start + timedelta(minutes=50),
                    status=status,
                    location="Sala 2, térreo" if index else None,
                    notes=f"note {index}",
                    series_id=uuid.uuid4() if index else None,
                    created_by=owner.user_id,
                    created_at=WITH_MICROS,
                )
            )
    booked = await _models_page(db, owner, Appointment, None)

    as_owner = await client.get("/api/v1/appointments", headers=owner.headers)
    as_viewer = await client.get("/api/v1/appointments", headers=viewer.headers)

    assert as_owner.status_code == as_viewer.status_code == 200
    assert as_owner.content == pydantic_page(AppointmentRead, booked, None, hidden=())
    assert as_viewer.content == pydantic_page(AppointmentRead, booked, None, hidden={"notes"})
    assert [item["notes"] for item in as_owner.json()["items"]] == ["note 0", "note 1"]
    assert [item["notes"] for item in as_viewer.json()["items"]] == [None, None]


async def test_instants_read_from_postgresql_are_in_utc_on_every_path(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    """asyncpg answers a timestamptz in UTC, so UTCDateTime converts nothing there; whatever the
    session's time zone, the ORM and the hot reads see UTC, and pages say `Z`."""
    owner = await make_member(db, role="owner")
    await _patients(db, owner, CUSTOM)
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        await session.execute(text("SET TIME ZONE 'America/Sao_Paulo'"))
        entity = (await session.scalars(select(Patient).order_by(Patient.full_name))).first()
        [row, *_] = await PatientRepository(session).page(PatientFilters(), 10, None)
    assert entity is not None
    for instant in (entity.created_at, row.created_at, row.updated_at):
        assert instant.utcoffset() == timedelta(0)
    assert (entity.created_at, row.updated_at) == (WHOLE_SECOND, WITH_MICROS)

    page = await client.get("/api/v1/patients", headers=owner.headers)
    assert page.json()["items"][0]["created_at"] == "2026-03-09T14:00:00Z"

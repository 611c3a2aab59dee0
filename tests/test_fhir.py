"""FHIR read API: every response parses with fhir.resources' R4B models, statuses map as
docs/FHIR.md says, errors are OperationOutcome, and another practice's ids are 404."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from tests.factories import make_api_key, make_member
from tests.test_exports import post

FHIR = "/api/v1/fhir"
DOCUMENTED = {  # docs/FHIR.md
    "scheduled": "booked", "confirmed": "booked", "arrived": "arrived",
    "completed": "fulfilled", "cancelled": "cancelled", "no_show": "noshow",
}  # fmt: skip


def fhir_json(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return dict(response.json())


async def test_patient_read_and_search_with_next_link(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    ana = await post(client, owner, "patients", {
        "full_name": "Ana Souza", "birth_date": "1990-04-02", "phone": "+55 11 90000-0000",
        "email": "ana@example.com", "document": "123.456.789-00",
    })  # fmt: skip
    for name in ("Ana Lima", "Ana Costa", "Bruno Dias"):
        await post(client, owner, "patients", {"full_name": name})

    patient = Patient.model_validate(
        fhir_json(await client.get(f"{FHIR}/Patient/{ana['id']}", headers=owner.headers))
    )
    assert patient.id == ana["id"]
    assert patient.name[0].text == "Ana Souza"
    assert str(patient.birthDate) == "1990-04-02"
    assert {t.system: t.value for t in patient.telecom} == {
        "phone": "+55 11 90000-0000", "email": "ana@example.com",
    }  # fmt: skip

    search = {"name": "ana", "_count": 2}
    first = Bundle.model_validate(
        fhir_json(await client.get(f"{FHIR}/Patient", params=search, headers=owner.headers))
    )
    assert first.type == "searchset"
    next_url = {link.relation: link.url for link in first.link}["next"]
    second = Bundle.model_validate(
        fhir_json(await client.get(str(next_url), headers=owner.headers))
    )
    assert "next" not in {link.relation for link in second.link}
    names = [e.resource.name[0].text for e in [*first.entry, *second.entry]]
    assert names == ["Ana Costa", "Ana Lima", "Ana Souza"]
    born = Bundle.model_validate(fhir_json(await client.get(
        f"{FHIR}/Patient", params={"birthdate": "1990-04-02"}, headers=owner.headers)))  # fmt: skip
    assert [e.resource.id for e in born.entry] == [ana["id"]]


async def test_appointments_map_statuses_as_documented_and_filter_by_date_and_patient(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = await post(client, owner, "patients", {"full_name": "Ana Souza"})
    other = await post(client, owner, "patients", {"full_name": "Bruno Dias"})
    booked = {}
    for day, ours in enumerate(DOCUMENTED, start=2):
        body = {"patient_id": patient["id"], "start": f"2026-03-{day:02d}T13:00:00Z"}
        booked[ours] = (await post(client, owner, "appointments", body))["id"]
    await post(client, owner, "appointments",
               {"patient_id": other["id"], "start": "2026-03-03T15:00:00Z"})  # fmt: skip
    path = {"confirmed": ["confirmed"], "arrived": ["confirmed", "arrived"],
            "completed": ["confirmed", "arrived", "completed"], "cancelled": ["cancelled"],
            "no_show": ["confirmed", "no_show"]}  # fmt: skip
    for ours, steps in path.items():
        for step in steps:
            moved = await client.post(f"/api/v1/appointments/{booked[ours]}/status",
                                      json={"status": step}, headers=owner.headers)  # fmt: skip
            assert moved.status_code == 200, moved.text

    for ours, fhir_status in DOCUMENTED.items():
        response = await client.get(f"{FHIR}/Appointment/{booked[ours]}", headers=owner.headers)
        appointment = Appointment.model_validate(fhir_json(response))
        assert appointment.status == fhir_status, ours
        actors = {p.actor.reference for p in appointment.participant}
        assert f"Patient/{patient['id']}" in actors

    window = Bundle.model_validate(fhir_json(await client.get(
        f"{FHIR}/Appointment",
        params=[("date", "ge2026-03-03"), ("date", "le2026-03-04"),
                ("patient", f"Patient/{patient['id']}")],
        headers=owner.headers,
    )))  # fmt: skip
    assert [e.resource.id for e in window.entry] == [booked["confirmed"], booked["arrived"]]


async def test_errors_are_operation_outcomes_and_other_practices_ids_are_404(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    ours, theirs = await make_member(db, role="owner"), await make_member(db, role="owner")
    patient = await post(client, theirs, "patients", {"full_name": "Theirs"})
    body = {"patient_id": patient["id"], "start": "2026-03-09T13:00:00Z"}
    appointment = await post(client, theirs, "appointments", body)
    for path in (f"Patient/{patient['id']}", f"Patient/{uuid.uuid4()}", "Patient/not-a-uuid",
                 f"Appointment/{appointment['id']}", f"Appointment/{uuid.uuid4()}"):  # fmt: skip
        outcome = OperationOutcome.model_validate(
            fhir_json(await client.get(f"{FHIR}/{path}", headers=ours.headers), 404)
        )
        assert outcome.issue[0].code == "not-found"
    listed = Bundle.model_validate(fhir_json(await client.get(
        f"{FHIR}/Patient", headers=ours.headers)))  # fmt: skip
    assert not listed.entry
    bad = fhir_json(await client.get(f"{FHIR}/Appointment", params={"date": "ge-soon"},
                                     headers=ours.headers), 400)  # fmt: skip
    assert OperationOutcome.model_validate(bad).issue[0].code == "invalid"
    anonymous = fhir_json(await client.get(f"{FHIR}/Patient/{patient['id']}"), 401)
    assert OperationOutcome.model_validate(anonymous).issue[0].code == "login"
    viewer = await make_member(db, role="viewer", tenant_id=ours.tenant_id)
    denied = fhir_json(await client.get(f"{FHIR}/Patient", headers=viewer.headers), 403)
    assert OperationOutcome.model_validate(denied).issue[0].code == "forbidden"


@pytest.mark.parametrize("scopes", [["patients:read"], ["appointments:read"]])
async def test_api_keys_read_fhir_within_their_scopes(
    client: httpx.AsyncClient, db: FastAPI, scopes: list[str]
) -> None:
    owner = await make_member(db, role="owner")
    key = await make_api_key(db, owner.tenant_id, scopes=scopes)
    headers = {"X-API-Key": key}
    patients = await client.get(f"{FHIR}/Patient", headers=headers)
    appointments = await client.get(f"{FHIR}/Appointment", headers=headers)
    assert patients.status_code == (200 if "patients:read" in scopes else 403)
    assert appointments.status_code == (200 if "appointments:read" in scopes else 403)


async def test_metadata_is_a_capability_statement(client: httpx.AsyncClient) -> None:
    statement = CapabilityStatement.model_validate(fhir_json(await client.get(f"{FHIR}/metadata")))
    assert {r.type for r in statement.rest[0].resource} == {"Patient", "Appointment"}

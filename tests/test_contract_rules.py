"""Rules the schemathesis contract run (tests/contract.py) surfaced, each pinned by a test that
fails if the rule goes: the document says what the server does, and the server refuses only what
the document refuses."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from clinicflow.main import create_app
from tests.conftest import make_test_settings
from tests.factories import make_member
from tests.test_patients import create, set_custom_fields

FIELDS = [{"key": "insurance", "label": "Insurance", "type": "text"}]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(make_test_settings()).openapi()
    return schema


async def test_bearer_tokens_are_declared_as_http_bearer(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {**schemes["BearerToken"], "type": "http", "scheme": "bearer"}
    patients = document["paths"]["/api/v1/patients"]["get"]["security"]
    assert {"BearerToken": []} in patients
    assert {"APIKeyHeader": []} in patients


async def test_free_text_inputs_declare_the_control_character_rule(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["PatientCreate"]["properties"]["full_name"]["pattern"].startswith("^[^")
    free = schemas["PatientCreate"]["properties"]["custom_fields"]
    assert free["additionalProperties"] == {"$ref": "#/components/schemas/FreeJson"}
    cursor = next(
        parameter
        for parameter in document["paths"]["/api/v1/patients"]["get"]["parameters"]
        if parameter["name"] == "cursor"
    )
    assert cursor["schema"]["pattern"] == "^[A-Za-z0-9_-]+$"
    assert "404" in document["paths"]["/api/v1/patients"]["get"]["responses"]


async def test_me_is_not_an_id_so_allow_names_only_its_own_methods(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    me = await client.request("OPTIONS", "/api/v1/users/me", headers=owner.headers)
    summary = await client.request(
        "OPTIONS", "/api/v1/financial-entries/summary", headers=owner.headers
    )
    not_an_id = await client.get("/api/v1/patients/not-a-uuid", headers=owner.headers)
    assert (me.status_code, me.headers["allow"]) == (405, "GET, PUT")
    assert (summary.status_code, summary.headers["allow"]) == (405, "GET")
    assert not_an_id.status_code == 404


async def test_control_characters_on_fhir_paths_answer_an_operation_outcome(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    response = await client.get("/api/v1/fhir/Patient?name=a%01b", headers=owner.headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_numbers_are_not_dates_and_integers_are_not_booleans(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    for body in ({"birth_date": 0}, {"birth_date": "0"}, {"active": 0}):
        response = await client.post(
            "/api/v1/patients", json={"full_name": "Ana", **body}, headers=owner.headers
        )
        assert response.status_code == 422, body
    listed = await client.get("/api/v1/appointments?to=0.5", headers=owner.headers)
    assert listed.status_code == 422
    assert (await client.get("/api/v1/patients", headers=owner.headers)).json()["items"] == []


async def test_a_removed_custom_field_does_not_lock_patients_holding_it(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    await set_custom_fields(db, owner.tenant_id, FIELDS)
    patient = await create(client, owner.headers, custom_fields={"insurance": "Unimed"})
    await set_custom_fields(db, owner.tenant_id, [])
    response = await client.patch(
        f"/api/v1/patients/{patient['id']}",
        json={"custom_fields": {}, "phone": "+55 11 5555-0000"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["custom_fields"] == {}


async def test_availability_says_how_far_it_searched(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    long = await client.get(
        "/api/v1/availability",
        params={"from": "2026-03-02T00:00:00Z", "to": "2026-12-31T00:00:00Z"},
        headers=owner.headers,
    )
    inverted = await client.get(
        "/api/v1/availability",
        params={"from": "2026-03-10T00:00:00Z", "to": "2026-03-09T00:00:00Z"},
        headers=owner.headers,
    )
    assert long.status_code == 200
    assert long.json()["searched_until"] == "2026-05-03T00:00:00Z"
    assert (inverted.status_code, inverted.json()["slots"]) == (200, [])


def _schema_pattern(document: dict[str, Any], model: str, field: str) -> re.Pattern[str]:
    schema = document["components"]["schemas"][model]["properties"][field]
    option = next(option for option in schema.get("anyOf", [schema]) if "pattern" in option)
    return re.compile(option["pattern"])


async def test_stripped_text_minimum_counts_what_is_left_maximum_what_was_sent(
    client: httpx.AsyncClient, db: FastAPI, document: dict[str, Any]
) -> None:
    owner = await make_member(db, role="owner")
    stored = await create(client, owner.headers, full_name=" Ana Lima ", phone=" 000 ")
    assert (stored["full_name"], stored["phone"]) == ("Ana Lima", "000")
    too_long = " 000" + " " * 40  # 3 characters once stripped, 44 as sent
    refused = [
        await client.post("/api/v1/patients", json=body, headers=owner.headers)
        for body in ({"full_name": "Bia", "phone": too_long}, {"full_name": "   "})
    ]
    assert [response.status_code for response in refused] == [422, 422]
    assert refused[0].json()["errors"][0]["field"] == "phone"
    patched = await client.patch(
        f"/api/v1/patients/{stored['id']}", json={"phone": too_long}, headers=owner.headers
    )
    assert patched.status_code == 422
    listed = (await client.get("/api/v1/patients", headers=owner.headers)).json()["items"]
    assert [(patient["full_name"], patient["phone"]) for patient in listed] == [("Ana Lima", "000")]
    # The document says the same: blank is no name, edges may be blank.
    for model in ("PatientCreate", "PatientUpdate"):
        name = _schema_pattern(document, model, "full_name")
        assert name.fullmatch("   ") is None
        assert name.fullmatch(" Ana Lima ") is not None
        phone = _schema_pattern(document, model, "phone")
        assert phone.fullmatch(" 12 ") is None
        assert phone.fullmatch(" 000 ") is not None


async def test_fhir_date_search_declares_only_real_calendar_days(
    client: httpx.AsyncClient, db: FastAPI, document: dict[str, Any]
) -> None:
    parameters = document["paths"]["/api/v1/fhir/Appointment"]["get"]["parameters"]
    date = next(parameter for parameter in parameters if parameter["name"] == "date")
    pattern = re.compile(date["schema"]["items"]["pattern"])
    for value in ("2026-02-30", "2100-02-29", "2026-04-31", "ge2026-03-01T10:00+24:00"):
        assert pattern.fullmatch(value) is None, value
    owner = await make_member(db, role="owner")
    for value in ("2024-02-29", "2000-02-29", "ge2026-04-30", "lt2026-03-01T10:00-03:00"):
        assert pattern.fullmatch(value) is not None, value
        response = await client.get(
            "/api/v1/fhir/Appointment", params={"date": value}, headers=owner.headers
        )
        assert response.status_code == 200, (value, response.text)


async def test_the_oauth2_form_declares_that_empty_credentials_are_missing(
    client: httpx.AsyncClient, db: FastAPI, document: dict[str, Any]
) -> None:
    form = document["components"]["schemas"]["Body_token_api_v1_auth_token_post"]["properties"]
    assert (form["username"]["minLength"], form["password"]["minLength"]) == (1, 1)
    refused = await client.post("/api/v1/auth/token", data={"username": "ana", "password": ""})
    assert refused.status_code == 422
    assert [error["field"] for error in refused.json()["errors"]] == ["password"]

"""Every route that takes input, enumerated from the OpenAPI document, answers hostile values
(NUL and other control characters, naive datetimes, huge integers, nulls) with a 4xx problem:
never a 500, and nothing stored by the refused request."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from tests import documented_statuses
from tests.factories import Member, make_api_key, make_member

HOSTILE: dict[str, Any] = {
    "nul": "a\u0000b",
    "control": "bell\u0007",
    "naive datetime": "2031-01-06T10:00:00",
    "huge integer": 10**30,
    "negative huge integer": -(10**30),
    "null": None,
    "far future": "9999-12-31T23:59:59-14:00",
}
SKIPPED_PATHS = ("/api/v1/auth/logout", "/api/v1/auth/logout-all")  # would end the session


@dataclass
class World:
    owner: Member
    ids: dict[str, str]


async def _world(client: httpx.AsyncClient, app: FastAPI) -> World:
    owner = await make_member(app, role="owner")
    headers = owner.headers
    patient = (
        await client.post("/api/v1/patients", json={"full_name": "Hostile Test"}, headers=headers)
    ).json()["id"]
    appointment = (
        await client.post(
            "/api/v1/appointments",
            json={"patient_id": patient, "start": "2031-01-06T13:00:00Z", "duration_minutes": 50},
            headers=headers,
        )
    ).json()["id"]
    record = (
        await client.post(
            f"/api/v1/patients/{patient}/records", json={"content": "x"}, headers=headers
        )
    ).json()["id"]
    entry = (
        await client.post(
            "/api/v1/financial-entries",
            json={"kind": "income", "amount": "10.00", "due_date": "2031-01-06"},
            headers=headers,
        )
    ).json()["id"]
    await make_api_key(app, owner.tenant_id or uuid.uuid4(), ["patients:read"])
    key = (await client.get("/api/v1/api-keys", headers=headers)).json()["items"][0]["id"]
    ids = {
        "patient_id": patient, "appointment_id": appointment, "record_id": record,
        "entry_id": entry, "key_id": key, "user_id": str(owner.user_id),
        "tenant_id": str(owner.tenant_id),
    }  # fmt: skip
    return World(owner, ids)


def _example(name: str, schema: dict[str, Any], ids: dict[str, str]) -> Any:
    """A plausible valid value for a schema, so that one hostile field reaches deep code."""
    if name in ids:
        return ids[name]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        schema = next(option for option in options if option.get("type") != "null")
    if "enum" in schema:
        return schema["enum"][0]
    kind, form = schema.get("type"), schema.get("format")
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return {"date-time": "2031-01-06T10:00:00Z", "date": "2031-01-06", "email": "a@example.com",
            "uuid": str(uuid.uuid4())}.get(form, "valid text")  # fmt: skip


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    where: str  # "query", "body" or "path"
    field: str
    value_name: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} {self.where}.{self.field}={self.value_name}"


def _cases(document: dict[str, Any]) -> Iterator[tuple[Case, dict[str, Any]]]:
    for path, item in document["paths"].items():
        if not path.startswith("/api/") or path in SKIPPED_PATHS:
            continue
        for method, operation in item.items():
            fields: list[tuple[str, str]] = [
                (parameter["in"], parameter["name"])
                for parameter in operation.get("parameters", [])
                if parameter["in"] in ("query", "path")
            ]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                schema = _resolve(document, body["schema"])
                fields += [("body", name) for name in schema.get("properties", {})]
            for where, field in fields:
                for value_name in HOSTILE:
                    yield Case(method.upper(), path, where, field, value_name), operation


async def test_hostile_values_get_4xx_everywhere(client: httpx.AsyncClient, db: FastAPI) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    world = await _world(client, db)
    failures = []
    # A 500 is an answer here, not an exception to stop at: collect them all.
    transport = httpx.ASGITransport(
        app=documented_statuses.recording(db), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as hostile:
        for case, operation in _cases(document):
            response = await hostile.request(**_request(document, case, operation, world))
            if response.status_code >= 500:
                failures.append(f"{case.id} -> {response.status_code}")
    assert not failures, f"{len(failures)} answers were 5xx:\n" + "\n".join(failures)


def _request(
    document: dict[str, Any], case: Case, operation: dict[str, Any], world: World
) -> dict[str, Any]:
    hostile = HOSTILE[case.value_name]
    path = case.path
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            value = (
                str(hostile) if case.where == "path" and parameter["name"] == case.field
                else world.ids.get(parameter["name"], str(uuid.uuid4()))
            )  # fmt: skip
            path = path.replace("{" + parameter["name"] + "}", quote(value, safe=""))
    params = {case.field: "" if hostile is None else str(hostile)} if case.where == "query" else {}
    request: dict[str, Any] = {
        "method": case.method, "url": path, "params": params, "headers": world.owner.headers,
    }  # fmt: skip
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        schema = _resolve(document, body["schema"])
        valid = {
            name: _example(name, _resolve(document, field), world.ids)
            for name, field in schema.get("properties", {}).items()
            if name in schema.get("required", []) or case.where == "body"
        }
        if case.where == "body":
            valid[case.field] = hostile
        request["json"] = valid
    return request


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
async def test_datetimes_at_the_edge_of_the_calendar_are_4xx(
    client: httpx.AsyncClient, db: FastAPI, value: str
) -> None:
    owner = await make_member(db, role="owner")
    for path in ("/api/v1/appointments", "/api/v1/availability"):
        response = await client.get(
            path, params={"from": value, "to": value, "duration": 50}, headers=owner.headers
        )
        assert 400 <= response.status_code < 500, (path, response.text)


def _cursor(values: list[Any]) -> str:
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("/api/v1/appointments", ["2031-01-06T10:00:00", str(uuid.uuid4())]),  # naive
        ("/api/v1/appointments", ["9999-12-31T23:59:59-14:00", str(uuid.uuid4())]),
        ("/api/v1/audit-events", [10**30]),
        ("/api/v1/audit-events", [-1]),
        ("/api/v1/patients", ["Ana\u0000", str(uuid.uuid4())]),
        ("/api/v1/patients", ["Ana\ud800", str(uuid.uuid4())]),  # a lone surrogate
        ("/api/v1/patients", [{"nested": True}, str(uuid.uuid4())]),
    ],
)
async def test_a_forged_cursor_names_no_page_404(
    client: httpx.AsyncClient, db: FastAPI, path: str, values: list[Any]
) -> None:
    owner = await make_member(db, role="owner")
    response = await client.get(path, params={"cursor": _cursor(values)}, headers=owner.headers)
    assert response.status_code == 404, response.text
    assert response.json()["type"] == "urn:clinicflow:problem:unknown-cursor"
    assert "cursor" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/tenant", {"custom_patient_fields": None}, "custom_patient_fields"),
        ("/api/v1/tenant", {"currency": None}, "currency"),
        ("/api/v1/tenant", {"timezone": None}, "timezone"),
    ],
)
async def test_a_null_where_a_value_is_required_is_422_and_stores_nothing(
    client: httpx.AsyncClient, db: FastAPI, path: str, body: dict[str, Any], field: str
) -> None:
    owner = await make_member(db, role="owner")
    before = (await client.get(path, headers=owner.headers)).json()
    response = await client.patch(path, json=body, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert (await client.get(path, headers=owner.headers)).json() == before
    created = await client.post(
        "/api/v1/patients", json={"full_name": "Still Works"}, headers=owner.headers
    )
    assert created.status_code == 201  # the practice is not broken for later requests


async def test_a_patient_cannot_be_made_neither_active_nor_inactive(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    patient = await client.post(
        "/api/v1/patients", json={"full_name": "Nullable", "email": "n@example.com"},
        headers=owner.headers,
    )  # fmt: skip
    path = f"/api/v1/patients/{patient.json()['id']}"
    refused = await client.patch(path, json={"active": None}, headers=owner.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "active"
    cleared = await client.patch(path, json={"email": None}, headers=owner.headers)
    assert cleared.status_code == 200  # an optional field may be cleared
    assert cleared.json()["email"] is None
    assert cleared.json()["active"] is True


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"json": {"username": "ana\u0000", "password": "x" * 10}}, "username"),
        ({"params": {"q": "a\u0000b"}}, "q"),
    ],
)
async def test_control_characters_are_refused_before_any_route_runs(
    client: httpx.AsyncClient, db: FastAPI, request_kwargs: dict[str, Any], field: str
) -> None:
    owner = await make_member(db, role="owner")
    if "json" in request_kwargs:
        response = await client.post("/api/v1/auth/login", **request_kwargs)
    else:
        response = await client.get("/api/v1/patients", headers=owner.headers, **request_kwargs)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
    notes = await client.post(
        "/api/v1/patients", json={"full_name": "Tab\tand\nnewline", "notes": "line 1\nline 2"},
        headers=owner.headers,
    )  # fmt: skip
    assert notes.status_code == 201  # tabs and line breaks stay allowed in text


@pytest.mark.parametrize(
    "content_type",
    ["application/merge-patch+json", "application/vnd.api+json; charset=utf-8", "APPLICATION/JSON"],
)
async def test_control_characters_are_refused_in_every_body_parsed_as_json(
    client: httpx.AsyncClient, db: FastAPI, content_type: str
) -> None:
    """FastAPI reads any application/*+json body as JSON: the gate reads the same bodies."""
    owner = await make_member(db, role="owner")
    response = await client.post(
        "/api/v1/patients",
        content=b'{"full_name": "Ctl\\u0000\\u001b[31mX"}',
        headers={**owner.headers, "Content-Type": content_type},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "full_name"
    listed = await client.get("/api/v1/patients", headers=owner.headers)
    assert listed.json()["items"] == []

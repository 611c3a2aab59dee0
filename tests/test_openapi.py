"""The OpenAPI document is valid OpenAPI 3.1 and documents every error as problem+json."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from clinicflow.main import create_app
from tests.conftest import make_test_settings

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
FHIR_ERROR_CONTENT = {
    "application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    schema: dict[str, Any] = create_app(make_test_settings()).openapi()
    return schema


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_the_document_validates_against_the_openapi_31_schema(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on the first violation


def test_every_error_response_is_a_problem_document(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                expected = FHIR_ERROR_CONTENT if "/fhir/" in path else PROBLEM_CONTENT
                assert response["content"] == expected, (method, path, status)
                assert response["description"], (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_statuses_that_follow_from_a_route_are_documented(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        statuses = set(operation["responses"])
        where = (method, path)
        if operation.get("security"):
            assert {"401", "403"} <= statuses, where
            if method != "get":
                # Revoking a credential is let through read-only mode, and says so.
                read_only_ok = operation.get("x-works-in-read-only", False)
                assert ("423" in statuses) != read_only_ok, where
        if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
            assert "404" in statuses, where
        if "requestBody" in operation:
            assert {"413", "422"} <= statuses, where
        if path.startswith("/api/"):
            assert {"429", "503"} <= statuses, where
            assert "Retry-After" in operation["responses"]["429"]["headers"], where
            assert "Retry-After" in operation["responses"]["503"]["headers"], where


def test_the_problem_component_names_every_kind_of_problem(document: dict[str, Any]) -> None:
    kinds = document["components"]["schemas"]["Problem"]["properties"]["type"]["examples"]
    for slug in ("validation-failed", "rate-limited", "tenant-read-only", "not-found", "conflict"):
        assert f"urn:clinicflow:problem:{slug}" in kinds


def test_the_practice_header_is_declared_as_a_uuid(document: dict[str, Any]) -> None:
    headers = [
        parameter
        for _, _, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["name"].lower() == "x-tenant-id"
    ]
    assert headers
    for header in headers:  # absent when not wanted, never the string "null"
        assert header["schema"]["type"] == "string"
        assert header["schema"]["format"] == "uuid"
        assert header["required"] is False


async def test_a_documented_problem_is_what_the_api_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/patients")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(response.json())


def test_every_operation_is_summarised_and_described_by_hand(document: dict[str, Any]) -> None:
    app = create_app(make_test_settings())
    # What FastAPI shows when a route has no summary: its function name, title-cased.
    generated = {
        route.name.replace("_", " ").title() for route in app.routes if isinstance(route, APIRoute)
    }
    summaries = []
    for path, method, operation in operations(document):
        where = (method, path)
        summary = operation.get("summary", "")
        assert summary, where
        assert summary not in generated, where
        assert len(operation.get("description", "").strip()) >= 40, where
        summaries.append(summary)
    duplicated = sorted({summary for summary in summaries if summaries.count(summary) > 1})
    assert not duplicated  # a client generator or an AI tool list tells operations apart by it


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _request_body_schemas(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every object schema a request body reaches, by name, through refs, unions and arrays."""
    found: dict[str, dict[str, Any]] = {}
    pending = [
        media["schema"]
        for _, _, operation in operations(document)
        for media in operation.get("requestBody", {}).get("content", {}).values()
    ]
    while pending:
        schema = pending.pop()
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in found:
                continue
            found[name] = schema = _resolve(document, schema)
        pending.extend(schema.get("properties", {}).values())
        for key in ("anyOf", "oneOf", "allOf"):
            pending.extend(schema.get(key, []))
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                pending.append(schema[key])
    return found


def test_every_request_body_field_is_described(document: dict[str, Any]) -> None:
    schemas = _request_body_schemas(document)
    assert {"PatientCreate", "AppointmentCreate", "Recurrence", "EntryCreate"} <= set(schemas)
    undescribed = [
        f"{name}.{field}"
        for name, schema in schemas.items()
        for field, spec in schema.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert not undescribed


def test_query_parameters_are_described(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                assert parameter.get("description"), (method, path, parameter["name"])

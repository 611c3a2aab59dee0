"""The OpenAPI document tells the whole truth about errors.

FastAPI documents 200 and 422 (as JSON) for every route. Our routes answer more, always as
`application/problem+json`. The statuses that follow from how a route is built are added here,
once, from the document itself: a secured route can answer 401 and 403 (and 423 when it writes),
a path parameter 404, any input 422, a body 413, every API route 429 and 503 (busy). A route
declares only what its own service can raise, with `responses=problems(Conflict, ...)`. Every error
response points at one `Problem` component whose `type` values come from the error hierarchy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from clinicflow.core.errors import HTTP_PROBLEMS, PROBLEM_MEDIA_TYPE, ClinicFlowError

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_ERROR = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
# FHIR clients expect an OperationOutcome, in FHIR's own media type, for every error.
_FHIR_ERROR = {
    "application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}
}
_BEARER = "BearerToken"
_FREE_JSON = "FreeJson"
_SCHEMA_REF_PREFIX = "#/components/schemas/"
# What the input guard (core/input_guard.py) lets through: no control characters at all in
# paths, queries and headers; tab, line feed and carriage return inside JSON text.
_NO_CONTROL = "^[^\\u0000-\\u001f\\u007f]*$"
_NO_CONTROL_IN_TEXT = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"
# Strings whose shape is already declared another way.
_FORMED = frozenset({"format", "enum", "const", "pattern"})
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
# A write that read-only mode lets through (revoking a credential): no 423 to document.
WORKS_IN_READ_ONLY = {"x-works-in-read-only": True}
_GENERIC_DESCRIPTIONS = {
    400: "The request cannot be processed as sent (e.g. a body that is not UTF-8 JSON).",
    401: "No credentials, or credentials that are invalid, expired or revoked.",
    403: "The caller lacks the permission (role or API-key scope) this operation needs.",
    404: "No such resource in the caller's practice (another practice's id answers the same).",
    409: "The request conflicts with the current state: a duplicate, an overlap, a transition "
    "that is not allowed, or a concurrent change.",
    413: "The request body exceeds the configured limit.",
    422: "The input failed validation; `errors` names each field.",
    423: "The practice is in read-only mode; reads keep working.",
    429: "Rate limit reached; retry after `Retry-After` seconds.",
    503: "The server is busy (no database connection came free in time); nothing was changed. "
    "Retry after `Retry-After` seconds.",
}


_OPERATION_OUTCOME: dict[str, Any] = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome: how the FHIR endpoints report an error.",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string", "examples": ["error"]},
                    "code": {"type": "string", "examples": ["not-found", "forbidden"]},
                    "diagnostics": {"type": "string"},
                },
            },
        },
    },
}


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending input, e.g. `custom_fields.x`.")
    location: list[str] | None = Field(
        default=None, description="Where the input was: body, query, path or header."
    )
    message: str = Field(description="What is wrong with it.")
    type: str = Field(description="Machine-readable error kind, e.g. `missing`, `uuid_parsing`.")
    position: int | None = Field(
        default=None, description="For malformed JSON: the byte offset where parsing failed."
    )


class Problem(BaseModel):
    """RFC 9457 problem details. Some problems add members of their own (e.g. `retry_after`,
    `limit`, `conflicting_appointment_id`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URN naming the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, in words a person can act on.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(
        default=None, description="Validation failures, one per field (422)."
    )


def problems(*errors: type[ClinicFlowError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the statuses its service raises beyond the generic ones."""
    declared: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = declared.setdefault(error.status_code, {"description": ""})
        entry["description"] = "; ".join(filter(None, [entry["description"], error.title]))
    return declared


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = document_problems(document, api_prefix="/api/")
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_problems(document: dict[str, Any], *, api_prefix: str) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_problem_schemas())
    _declare_bearer_tokens(components)
    for path, method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            _drop_null_branch(parameter)
            _forbid_control_characters(parameter.get("schema", {}), _NO_CONTROL)
        _offer_bearer_tokens(operation)
        responses = operation.setdefault("responses", {})
        for status in sorted(_generic_statuses(path, method, operation, api_prefix)):
            responses.setdefault(str(status), {"description": _GENERIC_DESCRIPTIONS[status]})
        error_content = _FHIR_ERROR if f"{api_prefix}v1/fhir/" in path else _PROBLEM_ERROR
        for status, response in responses.items():
            if int(status) >= 400:
                response["content"] = error_content
                response["description"] = response.get("description") or _describe(int(status))
        for retried in ("429", "503"):
            if retried in responses:
                responses[retried]["headers"] = {
                    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for name in _request_schema_names(document):
        _forbid_control_characters(schemas[name], _NO_CONTROL_IN_TEXT)
    schemas[_FREE_JSON] = _free_json()
    return document


def _free_json() -> dict[str, Any]:
    """Any JSON value, as free-form members (`custom_fields`, an event's `data`) take it, with
    no control character in a key or a text (the input guard's rule, all the way down)."""
    itself = {"$ref": _SCHEMA_REF_PREFIX + _FREE_JSON}
    return {
        "description": "Any JSON value without control characters in texts and keys.",
        "anyOf": [
            {"type": "string", "pattern": _NO_CONTROL_IN_TEXT},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": itself},
            {
                "type": "object",
                "propertyNames": {"pattern": _NO_CONTROL},
                "additionalProperties": itself,
            },
        ],
    }


def _declare_bearer_tokens(components: dict[str, Any]) -> None:
    """The access token is a plain `Authorization: Bearer` credential. The OAuth2 password
    scheme stays for Swagger's Authorize button; the HTTP bearer scheme says what a client (or
    a generated one) actually sends."""
    components.setdefault("securitySchemes", {})[_BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /api/v1/auth/login.",
    }


def _offer_bearer_tokens(operation: dict[str, Any]) -> None:
    security = operation.get("security")
    if security and {"OAuth2PasswordBearer": []} in security and {_BEARER: []} not in security:
        security.insert(security.index({"OAuth2PasswordBearer": []}) + 1, {_BEARER: []})


def _forbid_control_characters(schema: Any, pattern: str) -> None:
    """The input guard refuses control characters in every string (422): say so in the schema
    of every free-text input, so a schema-valid request is never refused for them."""
    if isinstance(schema, list):
        for item in schema:
            _forbid_control_characters(item, pattern)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not _FORMED.intersection(schema):
        schema["pattern"] = pattern
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        schema.setdefault("propertyNames", {"pattern": _NO_CONTROL})  # keys are text too
        if "properties" not in schema and schema.get("additionalProperties", True) is True:
            schema["additionalProperties"] = {"$ref": _SCHEMA_REF_PREFIX + _FREE_JSON}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            for item in value.values():
                _forbid_control_characters(item, pattern)
        elif key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties"):
            _forbid_control_characters(value, pattern)


def _request_schema_names(document: dict[str, Any]) -> set[str]:
    """Component schemas a request body can contain, directly or through references."""
    schemas = document["components"]["schemas"]
    pending = [
        body for _, _, operation in _operations(document)
        if (body := operation.get("requestBody"))
    ]  # fmt: skip
    names: set[str] = set()
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith(_SCHEMA_REF_PREFIX):
                name = reference.removeprefix(_SCHEMA_REF_PREFIX)
                if name not in names:
                    names.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return names


def _drop_null_branch(parameter: dict[str, Any]) -> None:
    """An optional parameter is absent, never "null": `X-Tenant-ID: null` is not a thing a
    client may send, so the schema offers only the real type (FastAPI adds a null branch)."""
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        if len(rest) == 1:
            schema.pop("anyOf")
            schema.update(rest[0])


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "head", "post", "put", "patch", "delete", "options"}:
                yield path, method, operation


def _generic_statuses(
    path: str, method: str, operation: dict[str, Any], api_prefix: str
) -> set[int]:
    statuses: set[int] = set()
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.update({400, 413})  # 400: a body that cannot be read at all (not UTF-8)
    if any(parameter.get("in") == "path" for parameter in parameters):
        statuses.add(404)
    if any(parameter.get("name") in ("cursor", "_cursor") for parameter in parameters):
        statuses.add(404)  # a cursor that names no page
    if operation.get("security"):
        statuses.update({401, 403})
        if method in _WRITE_METHODS and not operation.get("x-works-in-read-only"):
            statuses.add(423)
    if method in _WRITE_METHODS and path.startswith(api_prefix):
        statuses.add(409)  # besides each route's own rules, a concurrent change (core/errors.py)
    if path.startswith(api_prefix):
        statuses.update({429, 503})
    return statuses


def _describe(status: int) -> str:
    return _GENERIC_DESCRIPTIONS.get(status, "See the problem's detail.")


def _problem_schemas() -> dict[str, Any]:
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = problem.pop("$defs", {})
    problem["properties"]["type"]["examples"] = sorted(
        f"urn:clinicflow:problem:{slug}" for slug in _problem_slugs()
    )
    return {"Problem": problem, "OperationOutcome": _OPERATION_OUTCOME, **definitions}


def _problem_slugs() -> set[str]:
    """Every kind of problem the API can answer: the hierarchy's, and the framework's."""
    slugs = set(HTTP_PROBLEMS.values())
    pending: list[type[ClinicFlowError]] = [ClinicFlowError]
    while pending:
        error = pending.pop()
        slugs.add(error.slug)
        pending.extend(error.__subclasses__())
    return slugs

"""/fhir: a FHIR R4 (R4B models) read API over patients and appointments, with the REST API's
auth, permissions and tenant scope; errors as OperationOutcome."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fhir.resources.R4B.resource import Resource

from clinicflow.appointments.service import AppointmentService
from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import BadRequest, NotFound
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import (
    CURSOR_DESCRIPTION,
    CURSOR_PATTERN,
    cursor_fields,
    cursor_instant,
    decode_cursor,
    encode_cursor,
)
from clinicflow.core.types import Day
from clinicflow.fhir.resources import (
    FHIR_MEDIA_TYPE,
    appointment_resource,
    capability_statement,
    operation_outcome,
    patient_resource,
    searchset,
)
from clinicflow.fhir.search import appointment_filters, resource_id
from clinicflow.patients.repository import PatientFilters
from clinicflow.patients.service import PatientService

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/fhir", tags=["fhir"])
PatientReader = Annotated[Principal, Depends(require(Permission.PATIENTS_READ))]
AppointmentReader = Annotated[Principal, Depends(require(Permission.APPOINTMENTS_READ))]
Count = Annotated[int, Query(alias="_count", ge=1, le=200, description="Entries per page.")]
Cursor = Annotated[
    str | None,
    Query(alias="_cursor", max_length=512, pattern=CURSOR_PATTERN, description=CURSOR_DESCRIPTION),
]
_YEAR = r"(19[0-9]{2}|2[01][0-9]{2})"
_LEAP_YEAR = (  # 2000 is a leap year; 1900 and 2100 are not
    r"(19(0[48]|[2468][048]|[13579][26])|20(0[048]|[2468][048]|[13579][26])"
    r"|21(0[48]|[2468][048]|[13579][26]))"
)
_DAY = (
    rf"({_YEAR}-(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    rf"|{_YEAR}-(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    rf"|{_YEAR}-02-(0[1-9]|1[0-9]|2[0-8])|{_LEAP_YEAR}-02-29)"
)
# A search prefix and a real calendar day (or a date-time with an offset) in the years every
# instant may take.
FHIR_DATE_PATTERN = (
    rf"^(eq|gt|lt|ge|le)?{_DAY}"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
)
PATIENT_REFERENCE_PATTERN = (
    r"^(Patient/)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_FHIR: dict[str, Any] = {"content": {FHIR_MEDIA_TYPE: {}}}


def fhir_response(resource: Resource, status: int = 200) -> Response:
    return Response(resource.model_dump_json(), status_code=status, media_type=FHIR_MEDIA_TYPE)


def outcome_response(status: int, detail: str, headers: Mapping[str, str] | None) -> Response:
    response = fhir_response(operation_outcome(status, detail), status)
    response.headers.update(headers or {})
    return response


def _base(request: Request) -> str:
    return str(request.url_for("fhir_metadata")).removesuffix("/metadata")


def _next(request: Request, values: list[object] | None) -> str | None:
    return str(request.url.include_query_params(_cursor=encode_cursor(values))) if values else None


@router.get(
    "/metadata",
    name="fhir_metadata",
    summary="Get the FHIR CapabilityStatement",
    responses={200: _FHIR},
)
async def metadata() -> Response:
    """Public. The FHIR R4 CapabilityStatement of this server: the read and search interactions
    offered for Patient and Appointment, as `application/fhir+json`."""
    return fhir_response(capability_statement(datetime.now(UTC)))


@router.get("/Patient/{patient_id}", summary="Read a FHIR Patient", responses={200: _FHIR})
async def read_patient(patient_id: str, principal: PatientReader, session: SessionDep) -> Response:
    """Owner or assistant, or an API key with `patients:read`. The patient as a FHIR R4 Patient
    resource (`application/fhir+json`). Errors are OperationOutcome resources; 404 for an
    unknown id."""
    wanted = resource_id(patient_id)
    if wanted is None:
        raise NotFound("Patient not found.")
    patient = await PatientService(session, principal.require_tenant()).get(wanted)
    return fhir_response(patient_resource(patient))


@router.get(
    "/Patient",
    summary="Search FHIR Patients",
    responses={200: _FHIR, **problems(BadRequest)},
)
async def search_patients(
    request: Request,
    principal: PatientReader,
    session: SessionDep,
    name: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Like the REST search `q`: words that each start a word of the name, "
            "e-mail, phone or document.",
        ),
    ] = None,
    birthdate: Annotated[Day | None, Query(description="Exact birth date (YYYY-MM-DD).")] = None,
    count: Count = 50,
    cursor: Cursor = None,
) -> Response:
    """Owner or assistant, or an API key with `patients:read`. A searchset Bundle of Patient
    resources by `name` and `birthdate`; `_count` per page and the Bundle's `next` link (with
    `_cursor`) for the next page."""
    filters = PatientFilters(q=name, birth_date_from=birthdate, birth_date_to=birthdate)
    after = cursor_fields(decode_cursor(cursor) if cursor else None, str, uuid.UUID)
    patients, more = await PatientService(session, principal.require_tenant()).page(
        filters, count, after
    )
    last = patients[-1] if patients and more else None
    bundle = searchset(
        _base(request), [patient_resource(p) for p in patients], str(request.url),
        _next(request, [last.full_name, str(last.id)] if last else None),
    )  # fmt: skip
    return fhir_response(bundle)


@router.get(
    "/Appointment/{appointment_id}", summary="Read a FHIR Appointment", responses={200: _FHIR}
)
async def read_appointment(
    appointment_id: str, principal: AppointmentReader, session: SessionDep
) -> Response:
    """Owner, assistant or viewer, or an API key with `appointments:read`. The appointment as a
    FHIR R4 Appointment resource. Errors are OperationOutcome resources; 404 for an unknown
    id."""
    wanted = resource_id(appointment_id)
    if wanted is None:
        raise NotFound("No appointment with this id.")
    appointment = await AppointmentService(session, principal).get(wanted)
    return fhir_response(appointment_resource(appointment))


@router.get(
    "/Appointment",
    summary="Search FHIR Appointments",
    responses={200: _FHIR, **problems(BadRequest)},
)
async def search_appointments(
    request: Request,
    principal: AppointmentReader,
    session: SessionDep,
    date_values: Annotated[
        list[str],
        Query(
            alias="date",
            max_length=4,
            description="e.g. ge2026-01-01; repeat for a range.",
            json_schema_extra={"items": {"type": "string", "pattern": FHIR_DATE_PATTERN}},
        ),
    ] = [],  # noqa: B006
    patient: Annotated[
        str | None,
        Query(pattern=PATIENT_REFERENCE_PATTERN, description="Patient/{id} or the bare id."),
    ] = None,
    count: Count = 50,
    cursor: Cursor = None,
) -> Response:
    """Owner, assistant or viewer, or an API key with `appointments:read`. A searchset Bundle of
    Appointment resources by `date` (with FHIR prefixes such as ge/lt, up to 4) and `patient`;
    `_count` per page and the Bundle's `next` link for the next page."""
    filters = appointment_filters(date_values, patient)
    after = cursor_fields(decode_cursor(cursor) if cursor else None, cursor_instant, uuid.UUID)
    rows, more = await AppointmentService(session, principal).page(filters, count, after)
    last = rows[-1] if rows and more else None
    bundle = searchset(
        _base(request), [appointment_resource(a) for a in rows], str(request.url),
        _next(request, [last.start_at.isoformat(), str(last.id)] if last else None),
    )  # fmt: skip
    return fhir_response(bundle)

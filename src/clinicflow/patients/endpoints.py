"""/patients: the practice's patients (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import PlanLimitExceeded
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import (
    PageParams,
    cursor_fields,
    encode_cursor,
    page_params,
    page_response,
)
from clinicflow.core.types import Day
from clinicflow.notifications.outbox import Outbox, OutboxDep
from clinicflow.patients.repository import PatientFilters
from clinicflow.patients.schemas import (
    PatientCreate,
    PatientList,
    PatientRead,
    PatientUpdate,
)
from clinicflow.patients.service import PatientService

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/patients", tags=["patients"])
Reader = Annotated[Principal, Depends(require(Permission.PATIENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PATIENTS_WRITE))]
# Registering patients needs a confirmed address (a pre-claimed account must not collect them).
Registrar = Annotated[Principal, Depends(require(Permission.PATIENTS_WRITE, verified_email=True))]
Deleter = Annotated[Principal, Depends(require(Permission.PATIENTS_DELETE))]


def _service(
    principal: Principal, session: SessionDep, outbox: Outbox | None = None
) -> PatientService:
    return PatientService(session, principal.require_tenant(), outbox)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a patient",
    responses=problems(PlanLimitExceeded),
)
async def create_patient(
    body: PatientCreate, principal: Registrar, session: SessionDep, outbox: OutboxDep
) -> PatientRead:
    """Owner or assistant, or an API key with `patients:write`; a user must have a verified
    e-mail (403 otherwise). `custom_fields` is checked against the practice's field
    definitions (422). 402 when the plan's patient limit is reached; 423 when the practice is
    read-only. Answers 201 with the patient. Audited (patient.created); sends the
    patient.created webhook."""
    patient = await _service(principal, session, outbox).create(body, principal.actor)
    return PatientRead.model_validate(patient)


@router.get("", summary="List and search patients", response_model=PatientList)
async def list_patients(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words that must each start a word of the name, e-mail, phone or "
            "document (accent- and case-insensitive): `ana lim` finds Ana Lima. Without any "
            "letter or digit, a substring match.",
        ),
    ] = None,
    active: Annotated[
        bool | None, Query(description="Only active (true) or inactive (false) patients.")
    ] = None,
    birth_date_from: Annotated[
        Day | None, Query(description="Born on or after this date (YYYY-MM-DD).")
    ] = None,
    birth_date_to: Annotated[
        Day | None, Query(description="Born on or before this date (YYYY-MM-DD).")
    ] = None,
) -> Response:
    """Owner or assistant, or an API key with `patients:read`. Ordered by name; every word of `q`
    starts a word of the name, e-mail, phone or document; filter by `active` and a birth-date
    range. Cursor-paginated (`limit`, `cursor`; follow `next_cursor`). Deleted patients never
    appear."""
    filters = PatientFilters(q, active, birth_date_from, birth_date_to)
    patients, more = await _service(principal, session).page(
        filters, page.limit, cursor_fields(page.cursor, str, uuid.UUID)
    )
    last = patients[-1] if patients else None
    next_cursor = encode_cursor([last.full_name, str(last.id)]) if more and last else None
    return page_response(PatientRead, patients, next_cursor)


@router.get("/{patient_id}", summary="Get a patient")
async def read_patient(
    patient_id: uuid.UUID, principal: Reader, session: SessionDep
) -> PatientRead:
    """Owner or assistant, or an API key with `patients:read`. One patient by id; 404 for an
    unknown, deleted or other practice's id. The read is audited (patient.read)."""
    patient = await _service(principal, session).read(patient_id, principal.actor)
    return PatientRead.model_validate(patient)


@router.patch("/{patient_id}", summary="Update a patient")
async def update_patient(
    patient_id: uuid.UUID,
    body: PatientUpdate,
    principal: Writer,
    session: SessionDep,
    outbox: OutboxDep,
) -> PatientRead:
    """Owner or assistant, or an API key with `patients:write`. Partial: only the fields sent
    change; null clears birth_date, email, phone, document or notes, and a custom field set to
    null is removed. A new e-mail or name re-plans the pending appointment reminders (to the
    new address; none without one). 423 when the practice is read-only. Returns the patient;
    audited (patient.updated) and sends the patient.updated webhook."""
    patient = await _service(principal, session, outbox).update(patient_id, body, principal.actor)
    return PatientRead.model_validate(patient)


@router.delete("/{patient_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a patient")
async def delete_patient(
    patient_id: uuid.UUID, principal: Deleter, session: SessionDep, outbox: OutboxDep
) -> None:
    """Owner only. Soft delete: the patient is kept for the retention period but disappears from
    every read, search and export (404 afterwards). Their appointments stay on the agenda
    (cancel those that will not happen); their pending reminders are dropped. 423 when the
    practice is read-only. Answers 204; audited as patient.deleted."""
    await _service(principal, session, outbox).delete(patient_id, principal.actor)

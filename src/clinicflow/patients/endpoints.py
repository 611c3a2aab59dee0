"""/patients: the practice's patients (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.core.pagination import PageParams, cursor_fields, encode_cursor, page_params
from clinicflow.notifications.outbox import Outbox, OutboxDep
from clinicflow.patients.repository import PatientFilters
from clinicflow.patients.schemas import PatientCreate, PatientList, PatientRead, PatientUpdate
from clinicflow.patients.service import PatientService

router = APIRouter(prefix="/patients", tags=["patients"])
Reader = Annotated[Principal, Depends(require(Permission.PATIENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PATIENTS_WRITE))]
# Registering patients needs a confirmed address (a pre-claimed account must not collect them).
Registrar = Annotated[Principal, Depends(require(Permission.PATIENTS_WRITE, verified_email=True))]
Deleter = Annotated[Principal, Depends(require(Permission.PATIENTS_DELETE))]


def _service(
    principal: Principal, session: SessionDep, outbox: Outbox | None = None
) -> PatientService:
    return PatientService(session, principal.require_tenant(), outbox)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a patient")
async def create_patient(
    body: PatientCreate, principal: Registrar, session: SessionDep, outbox: OutboxDep
) -> PatientRead:
    patient = await _service(principal, session, outbox).create(body, principal.actor)
    return PatientRead.model_validate(patient)


@router.get("", summary="Search and list patients")
async def list_patients(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[
        str | None, Query(max_length=200, description="Name, e-mail, phone or document")
    ] = None,
    active: bool | None = None,
    birth_date_from: date | None = None,
    birth_date_to: date | None = None,
) -> PatientList:
    filters = PatientFilters(q, active, birth_date_from, birth_date_to)
    patients, more = await _service(principal, session).page(
        filters, page.limit, cursor_fields(page.cursor, str, uuid.UUID)
    )
    last = patients[-1] if patients else None
    return PatientList(
        items=[PatientRead.model_validate(patient) for patient in patients],
        next_cursor=encode_cursor([last.full_name, str(last.id)]) if more and last else None,
    )


@router.get("/{patient_id}", summary="One patient")
async def read_patient(
    patient_id: uuid.UUID, principal: Reader, session: SessionDep
) -> PatientRead:
    patient = await _service(principal, session).read(patient_id, principal.actor)
    return PatientRead.model_validate(patient)


@router.patch("/{patient_id}", summary="Update a patient (partial)")
async def update_patient(
    patient_id: uuid.UUID,
    body: PatientUpdate,
    principal: Writer,
    session: SessionDep,
    outbox: OutboxDep,
) -> PatientRead:
    patient = await _service(principal, session, outbox).update(patient_id, body, principal.actor)
    return PatientRead.model_validate(patient)


@router.delete(
    "/{patient_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete (soft; owner only)"
)
async def delete_patient(patient_id: uuid.UUID, principal: Deleter, session: SessionDep) -> None:
    await _service(principal, session).delete(patient_id, principal.actor)

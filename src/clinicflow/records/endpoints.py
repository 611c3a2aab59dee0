"""Medical records: the owner only (SPEC §2); content encrypted; reads and exports audited."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.records.schemas import (
    PatientRecordsExport,
    RecordAmend,
    RecordCreate,
    RecordList,
    RecordRead,
    RecordWithVersions,
)
from clinicflow.records.service import RecordService

router = APIRouter(tags=["medical records"])
Reader = Annotated[Principal, Depends(require(Permission.RECORDS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.RECORDS_WRITE))]


def _service(request: Request, session: SessionDep, principal: Principal) -> RecordService:
    return RecordService(session, request.app.state.key_ring, principal.require_tenant())


@router.post(
    "/patients/{patient_id}/records",
    status_code=status.HTTP_201_CREATED,
    summary="Write a record for a patient",
)
async def create_record(
    patient_id: uuid.UUID,
    body: RecordCreate,
    principal: Writer,
    request: Request,
    session: SessionDep,
) -> RecordRead:
    service = _service(request, session, principal)
    return await service.create(patient_id, body.content, body.kind, principal.actor)


@router.get("/patients/{patient_id}/records", summary="A patient's records (without content)")
async def list_records(
    patient_id: uuid.UUID, principal: Reader, request: Request, session: SessionDep
) -> RecordList:
    return RecordList(
        items=await _service(request, session, principal).list_for_patient(patient_id)
    )


@router.get("/patients/{patient_id}/records/export", summary="Every record and version (audited)")
async def export_records(
    patient_id: uuid.UUID, principal: Reader, request: Request, session: SessionDep
) -> PatientRecordsExport:
    return await _service(request, session, principal).export_patient(patient_id, principal.actor)


@router.get("/records/{record_id}", summary="A record's current version (audited)")
async def read_record(
    record_id: uuid.UUID, principal: Reader, request: Request, session: SessionDep
) -> RecordRead:
    return await _service(request, session, principal).read(record_id, principal.actor)


@router.get("/records/{record_id}/versions", summary="Every version of a record (audited)")
async def record_versions(
    record_id: uuid.UUID, principal: Reader, request: Request, session: SessionDep
) -> RecordWithVersions:
    return await _service(request, session, principal).with_versions(record_id, principal.actor)


@router.patch("/records/{record_id}", summary="Amend a record: a new version, never an overwrite")
async def amend_record(
    record_id: uuid.UUID,
    body: RecordAmend,
    principal: Writer,
    request: Request,
    session: SessionDep,
) -> RecordRead:
    return await _service(request, session, principal).amend(
        record_id, body.content, principal.actor
    )

"""Medical records: the owner only (SPEC §2); content encrypted; reads and exports audited."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.pagination import Paging, page_of_list, sortable_instant
from clinicflow.records.schemas import (
    PatientRecordsExport,
    RecordAmend,
    RecordCreate,
    RecordList,
    RecordRead,
    RecordSummary,
    RecordWithVersions,
)
from clinicflow.records.service import RecordService

router = APIRouter(route_class=UnitOfWorkRoute, tags=["medical records"])
Reader = Annotated[Principal, Depends(require(Permission.RECORDS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.RECORDS_WRITE))]


def _service(request: Request, session: SessionDep, principal: Principal) -> RecordService:
    return RecordService(session, request.app.state.key_ring, principal.require_tenant())


@router.post(
    "/patients/{patient_id}/records",
    status_code=status.HTTP_201_CREATED,
    summary="Write a medical record for a patient",
)
async def create_record(
    patient_id: uuid.UUID,
    body: RecordCreate,
    principal: Writer,
    request: Request,
    session: SessionDep,
) -> RecordRead:
    """Owner only (never assistants, viewers or API keys). Stores `content` encrypted at rest as
    version 1 of a new record of the given `kind` (default note). 404 for an unknown patient;
    423 when read-only. Answers 201 with the record; audited as record.created."""
    service = _service(request, session, principal)
    return await service.create(patient_id, body.content, body.kind, principal.actor)


@router.get("/patients/{patient_id}/records", summary="List a patient's medical records")
async def list_records(
    patient_id: uuid.UUID, principal: Reader, request: Request, session: SessionDep, page: Paging
) -> RecordList:
    """Owner only. The patient's records, oldest first, with kind, version and times but
    without content (so listing is not a clinical read and is not audited). 404 for an
    unknown patient. `limit` at a time, follow `next_cursor`."""
    records, next_cursor = page_of_list(
        await _service(request, session, principal).list_for_patient(patient_id),
        page,
        _by_creation,
        fields=2,
    )
    return RecordList(items=records, next_cursor=next_cursor)


def _by_creation(record: RecordSummary) -> tuple[str, str]:
    return sortable_instant(record.created_at), str(record.id)


@router.get("/patients/{patient_id}/records/export", summary="Export a patient's medical records")
async def export_records(
    patient_id: uuid.UUID, principal: Reader, request: Request, session: SessionDep
) -> PatientRecordsExport:
    """Owner only. Every record of the patient with every version's decrypted content, for
    transfer or an access request. Audited as record.exported. 503 when a record is sealed
    with an encryption key the server does not have."""
    return await _service(request, session, principal).export_patient(patient_id, principal.actor)


@router.get("/records/{record_id}", summary="Get a medical record")
async def read_record(
    record_id: uuid.UUID, principal: Reader, request: Request, session: SessionDep
) -> RecordRead:
    """Owner only. The record's current version with its decrypted content. Every read is audited
    (record.read). 404 for an unknown id; 503 when its encryption key is missing."""
    return await _service(request, session, principal).read(record_id, principal.actor)


@router.get("/records/{record_id}/versions", summary="Get every version of a medical record")
async def record_versions(
    record_id: uuid.UUID, principal: Reader, request: Request, session: SessionDep
) -> RecordWithVersions:
    """Owner only. The record with all its versions (content, author, time), oldest first.
    Audited as record.read. 404 for an unknown id."""
    return await _service(request, session, principal).with_versions(record_id, principal.actor)


@router.patch("/records/{record_id}", summary="Amend a medical record")
async def amend_record(
    record_id: uuid.UUID,
    body: RecordAmend,
    principal: Writer,
    request: Request,
    session: SessionDep,
) -> RecordRead:
    """Owner only. Adds a new version with the new `content`; earlier versions are kept, never
    overwritten. 423 when read-only. Returns the record at its new version; audited as
    record.amended."""
    return await _service(request, session, principal).amend(
        record_id, body.content, principal.actor
    )

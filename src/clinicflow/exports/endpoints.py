"""/exports: the practice's lists as CSV or XLSX files (SPEC §3), owner and assistant."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from clinicflow.appointments.endpoints import STARTS_BEFORE, STARTS_FROM
from clinicflow.appointments.models import Status
from clinicflow.appointments.repository import AppointmentFilters
from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import Database, SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import PermissionDenied
from clinicflow.core.types import Day, Instant
from clinicflow.exports.portability import PatientDataExport, PatientExportService
from clinicflow.exports.schemas import MEDIA_TYPES, ExportFormat
from clinicflow.exports.service import Export, ExportService, stream_export
from clinicflow.patients.repository import PatientFilters

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/exports", tags=["exports"])
portability_router = APIRouter(route_class=UnitOfWorkRoute, tags=["exports"])
Exporter = Annotated[Principal, Depends(require(Permission.EXPORTS_READ))]
FormatQuery = Annotated[
    ExportFormat, Query(alias="format", description="File format: csv (default) or xlsx.")
]
_FILE = {"description": "The file, streamed", "content": {t: {} for t in MEDIA_TYPES.values()}}


async def _send(
    request: Request,
    service: ExportService,
    principal: Principal,
    export: Export,
    fmt: ExportFormat,
    filters: dict[str, Any],
) -> StreamingResponse:
    await service.audit(export, fmt, principal.actor, filters)
    database: Database = request.app.state.database
    body = stream_export(database.sessionmaker, service.tenant_id, export, fmt)
    filename = f"{export.name}.{fmt.value}"
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _given(**values: object) -> dict[str, Any]:
    return {name: str(value) for name, value in values.items() if value is not None}


@router.get("/patients", summary="Export patients as CSV or XLSX", responses={200: _FILE})
async def export_patients(
    request: Request,
    principal: Exporter,
    session: SessionDep,
    fmt: FormatQuery = ExportFormat.CSV,
    q: Annotated[
        str | None, Query(max_length=200, description="Matches name, e-mail, phone or document.")
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
) -> StreamingResponse:
    """Owner or assistant. The patients matching the same filters as GET /patients, streamed as a
    file (`format=csv` or `xlsx`) with Content-Disposition attachment. Audited with the
    filters used."""
    service = ExportService(session, principal.require_tenant())
    export = await service.patients(PatientFilters(q, active, birth_date_from, birth_date_to))
    filters = _given(
        q=q, active=active, birth_date_from=birth_date_from, birth_date_to=birth_date_to
    )
    return await _send(request, service, principal, export, fmt, filters)


@router.get("/appointments", summary="Export appointments as CSV or XLSX", responses={200: _FILE})
async def export_appointments(
    request: Request,
    principal: Exporter,
    session: SessionDep,
    fmt: FormatQuery = ExportFormat.CSV,
    start_from: Annotated[Instant | None, Query(alias="from", description=STARTS_FROM)] = None,
    start_to: Annotated[Instant | None, Query(alias="to", description=STARTS_BEFORE)] = None,
    patient_id: Annotated[uuid.UUID | None, Query(description="Only this patient's.")] = None,
    professional_id: Annotated[
        uuid.UUID | None, Query(description="Only this professional's.")
    ] = None,
    status_filter: Annotated[
        Status | None, Query(alias="status", description="Only appointments in this status.")
    ] = None,
) -> StreamingResponse:
    """Owner or assistant. The appointments matching the same filters as GET /appointments,
    streamed as a file (`format=csv` or `xlsx`). Audited with the filters used."""
    service = ExportService(session, principal.require_tenant())
    filters = AppointmentFilters(start_from, start_to, patient_id, professional_id, status_filter)
    given = _given(
        start_from=start_from, start_to=start_to, patient_id=patient_id,
        professional_id=professional_id, status=status_filter,
    )  # fmt: skip
    return await _send(request, service, principal, service.appointments(filters), fmt, given)


@router.get(
    "/financial-entries", summary="Export financial entries as CSV or XLSX", responses={200: _FILE}
)
async def export_financial_entries(
    request: Request,
    principal: Exporter,
    session: SessionDep,
    fmt: FormatQuery = ExportFormat.CSV,
    start: Annotated[
        Day | None, Query(alias="from", description="Due on or after this date (YYYY-MM-DD).")
    ] = None,
    end: Annotated[
        Day | None, Query(alias="to", description="Due on or before this date (YYYY-MM-DD).")
    ] = None,
) -> StreamingResponse:
    """Owner or assistant. Entries with a due date in `from`..`to` (both optional), streamed as a
    file (`format=csv` or `xlsx`); amounts as exact decimals. Audited with the filters used."""
    service = ExportService(session, principal.require_tenant())
    export = service.financial_entries(start, end)
    return await _send(request, service, principal, export, fmt, _given(start=start, end=end))


@portability_router.get(
    "/patients/{patient_id}/export",
    summary="Export everything held about one patient",
)
async def export_patient(
    patient_id: uuid.UUID,
    request: Request,
    principal: Exporter,
    session: SessionDep,
    include_records: Annotated[
        bool, Query(description="Add the medical records (owner only; 403 otherwise).")
    ] = False,
) -> PatientDataExport:
    """Owner or assistant. One JSON document with the patient, their appointments with status
    history and their financial entries, for access and portability requests (LGPD/GDPR).
    `include_records=true` adds the medical records, owner only (403 otherwise). 404 for an
    unknown patient. Audited as patient.exported."""
    if include_records and Permission.RECORDS_READ not in principal.permissions:
        raise PermissionDenied("Only the practice owner may export medical records.")
    service = PatientExportService(session, request.app.state.key_ring, principal.require_tenant())
    return await service.build(patient_id, principal.actor, include_records=include_records)

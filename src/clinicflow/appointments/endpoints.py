"""/appointments: the agenda (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from clinicflow.appointments.availability import searched_window
from clinicflow.appointments.models import Appointment, Status
from clinicflow.appointments.repository import AppointmentFilters
from clinicflow.appointments.schemas import (
    AppointmentCreate,
    AppointmentList,
    AppointmentRead,
    AppointmentUpdate,
    Availability,
    SeriesCreated,
    Slot,
    StatusChange,
    StatusChangeRead,
    StatusHistory,
)
from clinicflow.appointments.service import AppointmentService, Scope, availability
from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.core.pagination import (
    PageParams,
    cursor_fields,
    cursor_instant,
    encode_cursor,
    page_params,
)
from clinicflow.core.types import Instant
from clinicflow.notifications.outbox import OutboxDep

router = APIRouter(prefix="/appointments", tags=["appointments"])
availability_router = APIRouter(tags=["appointments"])
ScopeQuery = Annotated[
    Scope, Query(description="For a series: this occurrence, this and following, or all")
]
Reader = Annotated[Principal, Depends(require(Permission.APPOINTMENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.APPOINTMENTS_WRITE))]


def _read(appointment: Appointment, principal: Principal) -> AppointmentRead:
    """Viewers see the agenda, not the front-desk notes about patients."""
    shown = AppointmentRead.model_validate(appointment)
    if Permission.PATIENTS_READ not in principal.permissions:
        shown = shown.model_copy(update={"notes": None})
    return shown


@router.post("", status_code=status.HTTP_201_CREATED, summary="Book an appointment")
async def create_appointment(
    body: AppointmentCreate, principal: Writer, session: SessionDep, outbox: OutboxDep
) -> AppointmentRead | SeriesCreated:
    service = AppointmentService(session, principal, outbox)
    if body.recurrence is None:
        return _read(await service.create(body), principal)
    booked = await service.create_series(body)
    return SeriesCreated(
        series_id=booked[0].series_id,
        items=[_read(appointment, principal) for appointment in booked],
    )


@router.get("", summary="The agenda, by start time")
async def list_appointments(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    start_from: Annotated[Instant | None, Query(alias="from")] = None,
    start_to: Annotated[Instant | None, Query(alias="to")] = None,
    patient_id: uuid.UUID | None = None,
    professional_id: uuid.UUID | None = None,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
) -> AppointmentList:
    filters = AppointmentFilters(start_from, start_to, patient_id, professional_id, status_filter)
    rows, more = await AppointmentService(session, principal).page(
        filters, page.limit, cursor_fields(page.cursor, cursor_instant, uuid.UUID)
    )
    last = rows[-1] if rows else None
    return AppointmentList(
        items=[_read(row, principal) for row in rows],
        next_cursor=encode_cursor([last.start_at.isoformat(), str(last.id)])
        if more and last
        else None,
    )


@router.get("/{appointment_id}", summary="One appointment")
async def read_appointment(
    appointment_id: uuid.UUID, principal: Reader, session: SessionDep
) -> AppointmentRead:
    return _read(await AppointmentService(session, principal).get(appointment_id), principal)


@router.patch("/{appointment_id}", summary="Reschedule or edit an appointment")
async def update_appointment(
    appointment_id: uuid.UUID,
    body: AppointmentUpdate,
    principal: Writer,
    session: SessionDep,
    outbox: OutboxDep,
    scope: ScopeQuery = "one",
) -> AppointmentRead:
    updated = await AppointmentService(session, principal, outbox).update_scoped(
        appointment_id, body, scope
    )
    return _read(updated, principal)


@router.delete(
    "/{appointment_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Cancel an appointment"
)
async def cancel_appointment(
    appointment_id: uuid.UUID,
    principal: Writer,
    session: SessionDep,
    outbox: OutboxDep,
    scope: ScopeQuery = "one",
) -> None:
    await AppointmentService(session, principal, outbox).cancel(appointment_id, scope)


@router.post("/{appointment_id}/status", summary="Move an appointment to another status")
async def change_status(
    appointment_id: uuid.UUID,
    body: StatusChange,
    principal: Writer,
    session: SessionDep,
    outbox: OutboxDep,
) -> AppointmentRead:
    service = AppointmentService(session, principal, outbox)
    return _read(await service.change_status(appointment_id, body.status, body.reason), principal)


@router.get("/{appointment_id}/history", summary="Status history: who, when, from, to")
async def status_history(
    appointment_id: uuid.UUID, principal: Reader, session: SessionDep
) -> StatusHistory:
    changes = await AppointmentService(session, principal).history(appointment_id)
    return StatusHistory(items=[StatusChangeRead.model_validate(change) for change in changes])


@availability_router.get("/availability", summary="Free slots in the practice's time zone")
async def get_availability(
    principal: Annotated[Principal, Depends(require(Permission.AVAILABILITY_READ))],
    session: SessionDep,
    start: Annotated[Instant, Query(alias="from")],
    end: Annotated[Instant, Query(alias="to")],
    duration: Annotated[int, Query(ge=5, le=720, description="Minutes")] = 50,
    professional_id: uuid.UUID | None = None,
) -> Availability:
    zone, professional, slots = await availability(
        session, principal, (start, end), duration, professional_id
    )
    return Availability(
        timezone=zone,
        professional_id=professional,
        duration_minutes=duration,
        slots=[Slot(start=slot_start, end=slot_end) for slot_start, slot_end in slots],
        searched_until=searched_window(start, end)[1],
    )

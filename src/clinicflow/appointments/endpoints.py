"""/appointments: the agenda (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from clinicflow.appointments.availability import searched_window
from clinicflow.appointments.models import AppointmentStatusChange, AppointmentView, Status
from clinicflow.appointments.repository import AppointmentFilters
from clinicflow.appointments.schemas import (
    AppointmentCreate,
    AppointmentList,
    AppointmentRead,
    AppointmentUpdate,
    Availability,
    SeriesCreated,
    StatusChange,
    StatusChangeRead,
    StatusHistory,
)
from clinicflow.appointments.service import AppointmentService, Scope, availability
from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import Conflict, NotFound
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import (
    PageParams,
    Paging,
    cursor_fields,
    cursor_instant,
    encode_cursor,
    page_of_list,
    page_params,
    page_response,
    shown_items,
    sortable_instant,
)
from clinicflow.core.types import Instant
from clinicflow.notifications.outbox import OutboxDep

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/appointments", tags=["appointments"])
availability_router = APIRouter(route_class=UnitOfWorkRoute, tags=["appointments"])
ScopeQuery = Annotated[
    Scope, Query(description="For a series: this occurrence, this and following, or all")
]
Reader = Annotated[Principal, Depends(require(Permission.APPOINTMENTS_READ))]
STARTS_FROM = "Starting at or after this instant (ISO 8601 with offset)."
STARTS_BEFORE = "Starting before this instant (ISO 8601 with offset)."
Writer = Annotated[Principal, Depends(require(Permission.APPOINTMENTS_WRITE))]


def _read(appointment: AppointmentView, principal: Principal) -> AppointmentRead:
    return _read_all([appointment], principal)[0]


def _read_all(appointments: list[AppointmentView], principal: Principal) -> list[AppointmentRead]:
    return shown_items(AppointmentRead, appointments, hidden=_hidden(principal))


def _hidden(principal: Principal) -> frozenset[str]:
    """Viewers see the agenda, not the front-desk notes about patients."""
    if Permission.PATIENTS_READ in principal.permissions:
        return frozenset()
    return frozenset({"notes"})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Book an appointment or a recurring series",
    responses=problems(NotFound),
)
async def create_appointment(
    body: AppointmentCreate, principal: Writer, session: SessionDep, outbox: OutboxDep
) -> AppointmentRead | SeriesCreated:
    """Owner or assistant, or an API key with `appointments:write`. Give `end` or
    `duration_minutes` (default: the practice's appointment length). `professional_id`
    defaults to the caller when an owner, else the practice's only professional. 409 when the
    professional already has an appointment then: the problem names
    `conflicting_appointment_id` and offers `nearby_free_slots`; an owner may book a
    deliberate overlap with `allow_overlap` (audited). With `recurrence` the whole weekly
    series is booked or none of it (201 with `series_id` and `items`). 423 when read-only.
    Sends appointment.created webhooks and plans reminders."""
    service = AppointmentService(session, principal, outbox)
    if body.recurrence is None:
        return _read(await service.create(body), principal)
    booked = await service.create_series(body)
    return SeriesCreated(
        series_id=booked[0].series_id,
        items=_read_all(list(booked), principal),
    )


@router.get("", summary="List appointments", response_model=AppointmentList)
async def list_appointments(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    start_from: Annotated[Instant | None, Query(alias="from", description=STARTS_FROM)] = None,
    start_to: Annotated[Instant | None, Query(alias="to", description=STARTS_BEFORE)] = None,
    patient_id: Annotated[uuid.UUID | None, Query(description="Only this patient's.")] = None,
    professional_id: Annotated[
        uuid.UUID | None, Query(description="Only this professional's.")
    ] = None,
    status_filter: Annotated[
        Status | None, Query(alias="status", description="Only appointments in this status.")
    ] = None,
) -> Response:
    """Owner, assistant or viewer, or an API key with `appointments:read`. Ordered by start time;
    filter by start range (`from`, `to`), patient, professional and status. Cursor-paginated
    (`limit`, `cursor`; follow `next_cursor`). Callers without patient access (viewers) get
    `notes` as null."""
    filters = AppointmentFilters(start_from, start_to, patient_id, professional_id, status_filter)
    rows, more = await AppointmentService(session, principal).page(
        filters, page.limit, cursor_fields(page.cursor, cursor_instant, uuid.UUID)
    )
    last = rows[-1] if rows else None
    next_cursor = (
        encode_cursor([last.start_at.isoformat(), str(last.id)]) if more and last else None
    )
    return page_response(AppointmentRead, rows, next_cursor, hidden=_hidden(principal))


@router.get("/{appointment_id}", summary="Get an appointment")
async def read_appointment(
    appointment_id: uuid.UUID, principal: Reader, session: SessionDep
) -> AppointmentRead:
    """Owner, assistant or viewer, or an API key with `appointments:read`. One appointment by id;
    `notes` is null for callers without patient access. 404 for an unknown id."""
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
    """Owner or assistant, or an API key with `appointments:write`. Partial: `start`, `end`,
    `location`, `notes`. Moving keeps the length unless `end` is sent; only scheduled or
    confirmed appointments move (409 otherwise). A move is checked against every other active
    appointment of the professional, deliberate overlaps included: 409 naming
    `conflicting_appointment_id` on an overlap, unless an owner sends `allow_overlap` (audited
    as appointment.overlap_allowed; 403 for anyone else). The stored `allow_overlap` follows
    the last move: a deliberate overlap moved without it becomes an ordinary appointment; an
    edit that does not move the appointment keeps the flag. For a series, `scope` applies the
    edit to this occurrence, this and following, or all: a series edit changes the
    occurrences still to happen (scheduled, confirmed) and leaves arrived, completed,
    cancelled and no_show ones as they are (409 when the occurrence named is one of those);
    each moves by the named occurrence's shift, keeping the series' spacing, and is checked
    against the professional's appointments outside the set being moved. 423 when read-only.
    Audited (appointment.rescheduled); sends appointment.updated."""
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
    """Owner or assistant, or an API key with `appointments:write`. Sets the status to cancelled
    (the appointment is kept, with its history); for a series, `scope` cancels this
    occurrence, this and following, or all. 423 when read-only. Answers 204; sends the
    appointment.cancelled webhook."""
    await AppointmentService(session, principal, outbox).cancel(appointment_id, scope)


@router.post(
    "/{appointment_id}/status",
    summary="Change an appointment's status",
    responses=problems(Conflict),
)
async def change_status(
    appointment_id: uuid.UUID,
    body: StatusChange,
    principal: Writer,
    session: SessionDep,
    outbox: OutboxDep,
) -> AppointmentRead:
    """Owner or assistant, or an API key with `appointments:write`. Allowed moves: scheduled ->
    confirmed/arrived/cancelled/no_show, confirmed -> arrived/cancelled/no_show, arrived ->
    completed/cancelled; completed, cancelled and no_show are final (409 otherwise). The
    change and `reason` go to the status history; audited; sends appointment.status_changed
    (or .cancelled). Returns the appointment."""
    service = AppointmentService(session, principal, outbox)
    return _read(await service.change_status(appointment_id, body.status, body.reason), principal)


@router.get("/{appointment_id}/history", summary="Get an appointment's status history")
async def status_history(
    appointment_id: uuid.UUID, principal: Reader, session: SessionDep, page: Paging
) -> StatusHistory:
    """Owner, assistant or viewer, or an API key with `appointments:read`. Every status change of
    the appointment, oldest first: from, to, when, by which member or API key, and the reason.
    `limit` at a time, follow `next_cursor`."""
    changes, next_cursor = page_of_list(
        await AppointmentService(session, principal).history(appointment_id),
        page,
        _by_time,
        fields=2,
    )
    return StatusHistory(
        items=[StatusChangeRead.model_validate(change) for change in changes],
        next_cursor=next_cursor,
    )


def _by_time(change: AppointmentStatusChange) -> tuple[str, str]:
    return sortable_instant(change.changed_at), str(change.id)


@availability_router.get(
    "/availability", summary="Find free appointment slots", responses=problems(NotFound, Conflict)
)
async def get_availability(
    principal: Annotated[Principal, Depends(require(Permission.AVAILABILITY_READ))],
    session: SessionDep,
    start: Annotated[
        Instant, Query(alias="from", description="Window start (ISO 8601 with offset).")
    ],
    end: Annotated[Instant, Query(alias="to", description="Window end (ISO 8601 with offset).")],
    duration: Annotated[
        int, Query(ge=5, le=720, description="Slot length in minutes (5-720).")
    ] = 50,
    professional_id: Annotated[
        uuid.UUID | None,
        Query(description="Whose agenda; default: you if owner, else the only professional."),
    ] = None,
) -> Availability:
    """Owner, assistant or viewer, or an API key with `availability:read`. Free slots of
    `duration` minutes between `from` and `to`: the practice's working hours (in its time
    zone) minus the professional's active appointments. `professional_id` defaults as for
    booking (409 when the practice has several and none is given). A window longer than 62
    days is cut to 62 days (`searched_until` says where the search stopped); a reversed one is
    empty."""
    zone, professional, slots = await availability(
        session, principal, (start, end), duration, professional_id
    )
    # One validation call for the whole week's slots, not a model built in Python per slot.
    return Availability.model_validate(
        {
            "timezone": zone,
            "professional_id": professional,
            "duration_minutes": duration,
            "slots": [{"start": slot_start, "end": slot_end} for slot_start, slot_end in slots],
            "searched_until": searched_window(start, end)[1],
        }
    )

"""The receptionist's tools: each one a thin call into the services the REST endpoints use.

A tool names the permission (API-key scope) it needs and whether it writes; `authorize` applies
the same 403/423 rules as `require()`. Medical records and finance have no tool, whatever the
key's scopes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.agents.schemas import (
    AgendaInput,
    AgendaOut,
    AppointmentOut,
    AvailabilityInput,
    AvailabilityOut,
    BookInput,
    CancelInput,
    CreatePatientInput,
    FindPatientInput,
    NoInput,
    PatientMatches,
    PatientOut,
    RescheduleInput,
    SlotOut,
)
from clinicflow.appointments.models import AppointmentView, Status
from clinicflow.appointments.repository import AppointmentFilters
from clinicflow.appointments.schemas import AppointmentCreate, AppointmentUpdate
from clinicflow.appointments.service import AppointmentService, availability
from clinicflow.auth.deps import Principal
from clinicflow.auth.permissions import Permission
from clinicflow.core.errors import Conflict
from clinicflow.core.models import utcnow
from clinicflow.notifications.outbox import Outbox
from clinicflow.patients.repository import PatientFilters
from clinicflow.patients.schemas import PatientCreate
from clinicflow.patients.service import PatientService
from clinicflow.tenants.schemas import PracticeProfile
from clinicflow.tenants.service import practice_profile

MAX_MATCHES, MAX_SLOTS, MAX_AGENDA = 10, 60, 200


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call: its transaction's session, the key's principal, the practice's zone."""

    session: AsyncSession
    principal: Principal
    zone: ZoneInfo
    outbox: Outbox  # webhook events and reminders follow a tool's changes as a REST call's do

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)


Handler = Callable[[Call, Any], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class AgentTool:
    name: str
    title: str
    description: str  # `{timezone}` is filled with the practice's zone when listed
    permission: Permission
    writes: bool
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    run: Handler


def _patient(patient: Any) -> PatientOut:
    return PatientOut.model_validate(patient, from_attributes=True)


def _appointment(call: Call, row: AppointmentView, names: dict[uuid.UUID, str]) -> AppointmentOut:
    return AppointmentOut(
        id=row.id,
        patient_id=row.patient_id,
        patient_name=names.get(row.patient_id),
        professional_id=row.professional_id,
        start=call.local(row.start_at),
        end=call.local(row.end_at),
        status=row.status,
    )


async def _names(call: Call, rows: list[AppointmentView]) -> dict[uuid.UUID, str]:
    """The patients' names, for a key that may read patients (the results' schema promises
    them with patients:read); none otherwise."""
    if Permission.PATIENTS_READ not in call.principal.permissions:
        return {}
    return await _patients(call).names({row.patient_id for row in rows})


async def _named(call: Call, row: AppointmentView) -> AppointmentOut:
    return _appointment(call, row, await _names(call, [row]))


# The times a clash names besides its free slots (which free_slots gives in the practice's
# zone already): the service states them in UTC, as REST answers appointments.
_CLASH_TIMES = ("start", "end", "occurrence_start")


def _in_practice_time(call: Call, clash: Conflict) -> None:
    """A clash as the agent gets it: its times in the practice's offset, like every result."""
    for field in _CLASH_TIMES:
        value = clash.extra.get(field)
        if isinstance(value, str):
            clash.extra[field] = call.local(datetime.fromisoformat(value)).isoformat()


def _patients(call: Call) -> PatientService:
    return PatientService(call.session, call.principal.require_tenant(), call.outbox)


def _appointments(call: Call) -> AppointmentService:
    """An agent books and moves only into free time to come (past and out-of-hours
    appointments are for staff, on REST)."""
    return AppointmentService(call.session, call.principal, call.outbox, bookable_only=True)


async def find_patient(call: Call, args: FindPatientInput) -> PatientMatches:
    rows, more = await _patients(call).page(PatientFilters(q=args.query), MAX_MATCHES, None)
    return PatientMatches(items=[_patient(row) for row in rows], more=more)


async def create_patient(call: Call, args: CreatePatientInput) -> PatientOut:
    data = PatientCreate.model_validate(args.model_dump(exclude_none=True))
    return _patient(await _patients(call).create(data, call.principal.actor))


async def get_availability(call: Call, args: AvailabilityInput) -> AvailabilityOut:
    minutes = args.duration_minutes or await _appointments(call).default_minutes()
    zone, professional, slots = await availability(
        call.session, call.principal, (args.start, args.end), minutes, args.professional_id,
        bookable_only=True,
    )  # fmt: skip
    return AvailabilityOut(
        timezone=zone,
        professional_id=professional,
        duration_minutes=minutes,
        slots=[SlotOut(start=start, end=end) for start, end in slots[:MAX_SLOTS]],
        more=len(slots) > MAX_SLOTS,
    )


async def book_appointment(call: Call, args: BookInput) -> AppointmentOut:
    data = AppointmentCreate.model_validate(args.model_dump(exclude_none=True))
    try:
        booked = await _appointments(call).create(data)
    except Conflict as clash:
        _in_practice_time(call, clash)
        raise
    return await _named(call, booked)


async def reschedule_appointment(call: Call, args: RescheduleInput) -> AppointmentOut:
    try:
        moved = await _appointments(call).update_scoped(
            args.appointment_id, AppointmentUpdate(start=args.start), "one"
        )
    except Conflict as clash:
        _in_practice_time(call, clash)
        raise
    return await _named(call, moved)


async def cancel_appointment(call: Call, args: CancelInput) -> AppointmentOut:
    cancelled = await _appointments(call).change_status(
        args.appointment_id, Status.CANCELLED, args.reason
    )
    return await _named(call, cancelled)


async def list_agenda(call: Call, args: AgendaInput) -> AgendaOut:
    """A patient's upcoming appointments, or a day's agenda; never notes."""
    start, end = args.start, args.end
    if start is None:
        now = utcnow()
        start = (
            now if args.patient_id else datetime.combine(call.local(now).date(), time(), call.zone)
        )
    if end is None and args.patient_id is None:
        end = start + timedelta(days=1)
    filters = AppointmentFilters(start.astimezone(UTC), end, args.patient_id, None, None)
    rows, more = await _appointments(call).page(filters, MAX_AGENDA, None)
    names = await _names(call, rows)
    return AgendaOut(
        timezone=str(call.zone),
        items=[_appointment(call, row, names) for row in rows],
        more=more,
    )


async def list_professionals(call: Call, args: NoInput) -> PracticeProfile:
    return await practice_profile(call.session, call.principal.require_tenant())


_TIMES = "Times are ISO 8601 with an offset; the practice's time zone is {timezone}."
TOOLS: tuple[AgentTool, ...] = (
    AgentTool(
        "find_patient",
        "Find a patient",
        "Search the practice's patients by the start of words of their name, phone, e-mail or "
        "document (case- and accent-insensitive: 'ana lim' finds Ana Lima). Use it first "
        "whenever the conversation concerns an existing patient: it gives the patient_id the "
        "other tools need. Returns up to 10 matches; when several match, ask the person for "
        "another detail (birth date, phone).",
        Permission.PATIENTS_READ, False, FindPatientInput, PatientMatches, find_patient,
    ),
    AgentTool(
        "create_patient",
        "Register a new patient",
        "Register a new patient when find_patient found nobody. Only full_name is required; add "
        "phone, e-mail and birth_date (YYYY-MM-DD) when the person gives them. Returns the new "
        "patient with the id to book with.",
        Permission.PATIENTS_WRITE, True, CreatePatientInput, PatientOut, create_patient,
    ),
    AgentTool(
        "get_availability",
        "Free appointment slots",
        "List free slots still to come (working hours minus booked appointments) between "
        "'from' and 'to' "
        "for an appointment of duration_minutes (default: the practice's usual length). Use it "
        "before book_appointment and offer the person a few of the slots. "
        + _TIMES,
        Permission.AVAILABILITY_READ, False, AvailabilityInput, AvailabilityOut, get_availability,
    ),
    AgentTool(
        "book_appointment",
        "Book an appointment",
        "Book an appointment for patient_id starting at 'start' (take it from get_availability: "
        "only a time still to come inside the practice's working hours can be booked). If the "
        "time is taken, the error names the clashing appointment and the two nearest free "
        "slots: offer those instead. " + _TIMES,
        Permission.APPOINTMENTS_WRITE, True, BookInput, AppointmentOut, book_appointment,
    ),
    AgentTool(
        "reschedule_appointment",
        "Move an appointment",
        "Move a scheduled or confirmed appointment to a new start, keeping its length. Find the "
        "appointment_id with list_agenda (patient_id) first. Like a booking, the new time must "
        "be still to come and inside working hours (get_availability), and a clash is refused "
        "with the two nearest free slots. " + _TIMES,
        Permission.APPOINTMENTS_WRITE, True, RescheduleInput, AppointmentOut,
        reschedule_appointment,
    ),
    AgentTool(
        "cancel_appointment",
        "Cancel an appointment",
        "Cancel an appointment (it stays in the history with the reason; its slot becomes "
        "free). Confirm with the person before calling it.",
        Permission.APPOINTMENTS_WRITE, True, CancelInput, AppointmentOut, cancel_appointment,
    ),
    AgentTool(
        "list_agenda",
        "The agenda",
        "With patient_id: that patient's upcoming appointments (e.g. 'when is my next "
        "appointment?'). Without: the practice's agenda for a day (default today) or for "
        "'from'..'to'. Lists times and statuses, never clinical notes. " + _TIMES,
        Permission.APPOINTMENTS_READ, False, AgendaInput, AgendaOut, list_agenda,
    ),
    AgentTool(
        "list_professionals",
        "The practice and its professionals",
        "The practice's name, time zone, working hours, the professionals appointments are "
        "booked with (their ids, for professional_id) and the custom patient fields. When "
        "there is one professional it is the default and professional_id can be left out.",
        Permission.PRACTICE_READ, False, NoInput, PracticeProfile, list_professionals,
    ),
)  # fmt: skip
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}

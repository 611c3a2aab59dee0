"""Booking rules: one professional is never double-booked; statuses move only forward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.availability import free_slots, searched_window, within_hours
from clinicflow.appointments.models import (
    TRANSITIONS,
    Appointment,
    AppointmentStatusChange,
    AppointmentView,
    Status,
)
from clinicflow.appointments.recurrence import occurrences
from clinicflow.appointments.repository import AppointmentFilters, AppointmentRepository
from clinicflow.appointments.schemas import AppointmentCreate, AppointmentUpdate, check_span
from clinicflow.audit import service as audit
from clinicflow.auth.deps import Principal
from clinicflow.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ReferenceNotFound,
    ValidationFailed,
)
from clinicflow.core.models import new_id, utcnow
from clinicflow.notifications.outbox import Outbox
from clinicflow.notifications.reminders import replan_reminder
from clinicflow.patients.models import Patient
from clinicflow.patients.repository import PatientRepository
from clinicflow.tenants.models import PracticeCalendar, Role
from clinicflow.tenants.repository import MembershipRepository, TenantRepository
from clinicflow.tenants.service import DEFAULT_MINUTES, sole_professional
from clinicflow.tenants.settings_schema import weekly_hours
from clinicflow.webhooks.service import emit

Scope = Literal["one", "following", "all"]
# The statuses an edit may still change the time of (and a series edit changes at all).
MOVABLE = (Status.SCHEDULED, Status.CONFIRMED)
# Where a refused booking looks for alternatives to offer.
NEARBY_BEFORE, NEARBY_AFTER = timedelta(hours=12), timedelta(days=14)
PICK_A_FREE_SLOT = (
    "Offer the person a free slot from get_availability (GET /api/v1/availability) instead."
)


_invalid = ValidationFailed.for_field


class AppointmentService:
    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        outbox: Outbox | None = None,
        *,
        bookable_only: bool = False,
    ) -> None:
        """`outbox` carries reminders and webhook events; only readers may leave it out.

        `bookable_only` (set for AI agents, /mcp): every booking and move must start in the
        future and lie inside the practice's working hours, in its time zone, as a free slot
        does (422 on `start` otherwise), and availability offers only slots still to come.
        Staff on REST leave it off: recording a past visit or giving an owner's special slot
        outside hours are deliberate there."""
        self.session = session
        self.principal = principal
        self.outbox = outbox
        self.bookable_only = bookable_only
        self.tenant_id = principal.require_tenant()
        self.appointments = AppointmentRepository(session)

    async def create(self, data: AppointmentCreate) -> Appointment:
        patient = await PatientRepository(self.session).get(data.patient_id)
        if patient is None:
            raise ReferenceNotFound("patient_id", "No patient with this id in this practice.")
        professional = await self.professional_for(data.professional_id)
        start = data.start.astimezone(UTC)  # stored and answered in UTC, whatever the offset sent
        minutes = data.duration_minutes or await self.default_minutes()
        end = data.end.astimezone(UTC) if data.end else start + timedelta(minutes=minutes)
        self._check_overlap_allowed(data.allow_overlap)
        await self._check_bookable(start, end)
        appointment = Appointment(
            patient_id=data.patient_id, professional_id=professional, start_at=start,
            end_at=end, location=data.location, notes=data.notes,
            allow_overlap=data.allow_overlap, created_by=self.principal.user_id,
        )  # fmt: skip
        await self._save(appointment, check_overlap=not data.allow_overlap)
        await self._record_change(appointment, None, Status.SCHEDULED, None)
        await self._changed(appointment, "appointment.created", booked=True, patient=patient)
        # Audited last: an append holds the practice's chain lock until the commit, so every
        # statement after it would make the practice's other writes wait longer.
        await self._audit("appointment.booked", appointment, start=start.isoformat())
        if data.allow_overlap:
            await audit.record(
                self.session, "appointment.overlap_allowed", actor=self.principal.actor,
                subject_type="appointment", subject_id=appointment.id,
            )  # fmt: skip
        return appointment

    async def create_series(self, data: AppointmentCreate) -> list[Appointment]:
        """All occurrences or none: one conflict stores nothing and names itself."""
        assert data.recurrence is not None
        if await PatientRepository(self.session).get(data.patient_id) is None:
            raise ReferenceNotFound("patient_id", "No patient with this id in this practice.")
        if data.allow_overlap:
            raise _invalid("allow_overlap", "A recurring series cannot overlap on purpose.")
        professional = await self.professional_for(data.professional_id)
        tenant = await TenantRepository(self.session).get(self.tenant_id)
        zone = ZoneInfo(tenant.timezone if tenant else "UTC")
        first = data.start.astimezone(UTC)
        length = (
            (data.end.astimezone(UTC) - first)
            if data.end
            else timedelta(minutes=data.duration_minutes or await self.default_minutes())
        )
        try:
            starts = occurrences(first, data.recurrence, zone)
        except ValueError as error:
            raise _invalid("recurrence", str(error)) from error
        if not starts:  # only an `until` before the first day can leave none
            first_day = first.astimezone(zone).date()
            raise _invalid(
                "recurrence.until",
                f"until ({data.recurrence.until}) is before the first occurrence's day "
                f"({first_day} in the practice's time zone, {zone.key}).",
            )
        series_id = new_id()
        booked = []
        for start in starts:
            await self._check_bookable(start, start + length)
            clash = await self.appointments.first_overlap(professional, start, start + length)
            if clash is not None:
                raise _overlap(clash.id, clash.start_at, clash.end_at, occurrence=start)
            appointment = Appointment(
                patient_id=data.patient_id, professional_id=professional, start_at=start,
                end_at=start + length, location=data.location, notes=data.notes,
                series_id=series_id, created_by=self.principal.user_id,
            )  # fmt: skip
            await self._save(appointment, check_overlap=True)
            await self._record_change(appointment, None, Status.SCHEDULED, None)
            await self._changed(appointment, "appointment.created", booked=True)
            booked.append(appointment)
        await audit.record(
            self.session, "appointment.series_booked", actor=self.principal.actor,
            subject_type="appointment_series", subject_id=series_id,
            details={"occurrences": len(booked)},
        )  # fmt: skip
        return booked

    async def targets(self, appointment: Appointment, scope: Scope) -> list[Appointment]:
        """The occurrence alone, it and the later ones, or the whole active series."""
        if scope == "one" or appointment.series_id is None:
            return [appointment]
        since = appointment.start_at if scope == "following" else None
        return await self.appointments.series_members(appointment.series_id, since)

    async def update_scoped(
        self, appointment_id: uuid.UUID, changes: AppointmentUpdate, scope: Scope
    ) -> Appointment:
        """A series edit (`following` or `all`) changes the occurrences still to happen: the
        scheduled and confirmed ones. Arrived, completed, cancelled and no_show occurrences
        are left as they are; the occurrence named must be one that can change (409
        otherwise). Every changed occurrence moves by the anchor's shift (and keeps or takes
        the new length), so the set keeps its spacing: it is checked against the
        professional's appointments outside it, never against its own old times."""
        anchor = await self.get(appointment_id)
        if scope == "one" or anchor.series_id is None:
            return await self.update(appointment_id, changes)
        if changes.allow_overlap:
            raise _invalid("allow_overlap", "A recurring series cannot overlap on purpose.")
        if anchor.status not in MOVABLE:
            raise Conflict(
                f"A {anchor.status.value} occurrence cannot be edited with its series; edit it "
                "alone (scope=one) or name an occurrence that is still to happen."
            )
        members = [m for m in await self.targets(anchor, scope) if m.status in MOVABLE]
        sent = changes.model_dump(exclude_unset=True, exclude={"start", "end", "allow_overlap"})
        start_shift = changes.start.astimezone(UTC) - anchor.start_at if changes.start else None
        end_shift = changes.end.astimezone(UTC) - anchor.end_at if changes.end else None
        spans: dict[uuid.UUID, tuple[datetime, datetime]] = {}
        if start_shift is not None or end_shift is not None:
            for member in members:
                new_start = member.start_at + (start_shift or timedelta())
                new_end = (
                    member.end_at + end_shift
                    if end_shift is not None
                    else new_start + (member.end_at - member.start_at)
                )
                try:
                    check_span(new_start, new_end)
                except ValueError as error:
                    raise _invalid("end", str(error)) from error
                await self._check_bookable(new_start, new_end)
                spans[member.id] = (new_start, new_end)
            await self._ensure_free_together(anchor.professional_id, spans)
        # Rows are written one at a time and PostgreSQL checks the exclusion constraint per
        # row, so the set is written in the order in which no row lands on a sibling's old
        # time: the last first when moving later, the first first when moving earlier.
        shift = start_shift or end_shift or timedelta()
        for member in sorted(members, key=lambda m: m.start_at, reverse=shift > timedelta()):
            for field, value in sent.items():
                setattr(member, field, value)
            moved_from, move = member.start_at, {}
            if member.id in spans:
                new_start, new_end = spans[member.id]
                move = {"start_at": new_start, "end_at": new_end, "allow_overlap": False}
            await self._save(member, check_overlap=False, **move)
            if move:
                await self._audit(
                    "appointment.rescheduled", member, start_from=moved_from.isoformat(),
                    start_to=member.start_at.isoformat(), scope=scope,
                )  # fmt: skip
            await self._changed(member, "appointment.updated")
        return anchor

    async def _ensure_free_together(
        self, professional: uuid.UUID, spans: dict[uuid.UUID, tuple[datetime, datetime]]
    ) -> None:
        """The new times of a set of appointments moving together meet neither each other nor
        any active appointment of the professional outside the set."""
        await self.appointments.lock_professional(professional)
        ordered = sorted(spans.items(), key=lambda item: item[1])
        for (_, (_, end)), (other, (start, other_end)) in pairwise(ordered):
            if start < end:
                raise _overlap(other, start, other_end, occurrence=start)
        for new_start, new_end in (span for _, span in ordered):
            clash = await self.appointments.first_overlap_outside(
                professional, new_start, new_end, set(spans)
            )
            if clash is not None:
                raise _overlap(clash.id, clash.start_at, clash.end_at, occurrence=new_start)

    async def cancel(self, appointment_id: uuid.UUID, scope: Scope) -> None:
        anchor = await self.get(appointment_id)
        for member in await self.targets(anchor, scope):
            if Status.CANCELLED in TRANSITIONS[member.status]:
                await self.change_status(member.id, Status.CANCELLED, f"cancelled ({scope})")

    async def get(self, appointment_id: uuid.UUID) -> Appointment:
        appointment = await self.appointments.get(appointment_id)
        if appointment is None:
            raise NotFound("No appointment with this id.")
        return appointment

    async def page(
        self, filters: AppointmentFilters, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> tuple[list[AppointmentView], bool]:
        rows = await self.appointments.page(filters, limit, after)
        return rows[:limit], len(rows) > limit

    async def update(self, appointment_id: uuid.UUID, changes: AppointmentUpdate) -> Appointment:
        """A move is checked against every other active appointment of the professional,
        deliberate overlaps included, unless this request is an owner's `allow_overlap`. The
        stored flag then says how the appointment's current time was chosen: a move sets it to
        the request's `allow_overlap` (so a deliberate overlap moved without it is an ordinary
        appointment again, checked and covered by the exclusion constraint); an edit that does
        not move it keeps it."""
        appointment = await self.get(appointment_id)
        sent = changes.model_dump(exclude_unset=True)
        start, end = sent.pop("start", None), sent.pop("end", None)
        allow_overlap = bool(sent.pop("allow_overlap", False))
        self._check_overlap_allowed(allow_overlap)
        moved_from, move = appointment.start_at, {}
        if start or end:
            if appointment.status not in MOVABLE:
                raise Conflict(f"A {appointment.status.value} appointment cannot be moved.")
            new_start = start.astimezone(UTC) if start else appointment.start_at
            new_end = (
                end.astimezone(UTC)
                if end
                else new_start + (appointment.end_at - appointment.start_at)
            )
            try:
                check_span(new_start, new_end)
            except ValueError as error:
                raise _invalid("end", str(error)) from error
            await self._check_bookable(new_start, new_end)
            move = {"start_at": new_start, "end_at": new_end, "allow_overlap": allow_overlap}
        for field, value in sent.items():
            setattr(appointment, field, value)
        await self._save(appointment, check_overlap=bool(move) and not allow_overlap, **move)
        if move:
            await self._audit(
                "appointment.rescheduled", appointment,
                start_from=moved_from.isoformat(), start_to=appointment.start_at.isoformat(),
            )  # fmt: skip
            if allow_overlap:
                await self._audit("appointment.overlap_allowed", appointment)
        await self._changed(appointment, "appointment.updated")
        return appointment

    async def change_status(
        self, appointment_id: uuid.UUID, status: Status, reason: str | None
    ) -> Appointment:
        appointment = await self.get(appointment_id)
        current = appointment.status
        if status not in TRANSITIONS[current]:
            raise Conflict(
                f"An appointment cannot go from {current.value} to {status.value}.",
                extra={"from": current.value, "to": status.value},
            )
        # No overlap check: a status change does not move the appointment, and no status
        # that frees the slot (cancelled, no_show) can be left again.
        await self._save(appointment, check_overlap=False, status=status)
        await self._record_change(appointment, current, status, reason)
        await self._audit(
            "appointment.status_changed", appointment, from_status=current.value,
            to_status=status.value, reason=reason,
        )  # fmt: skip
        event = (
            "appointment.cancelled" if status == Status.CANCELLED else "appointment.status_changed"
        )
        await self._changed(appointment, event, previous_status=current.value)
        return appointment

    async def _audit(self, action: str, appointment: Appointment, **details: str | None) -> None:
        await audit.record(
            self.session, action, actor=self.principal.actor, subject_type="appointment",
            subject_id=appointment.id, details=details,
        )  # fmt: skip

    async def history(self, appointment_id: uuid.UUID) -> list[AppointmentStatusChange]:
        await self.get(appointment_id)
        return await self.appointments.history(appointment_id)

    async def _check_bookable(self, start: datetime, end: datetime) -> None:
        """With `bookable_only`: the time starts in the future and lies inside the practice's
        working hours (the free-slot reading of them, `availability.within_hours`)."""
        if not self.bookable_only:
            return
        calendar = await self.calendar()
        zone = ZoneInfo(calendar.timezone)
        local = start.astimezone(zone)
        if start < utcnow():
            raise _invalid("start", f"{local.isoformat()} is in the past. {PICK_A_FREE_SLOT}")
        hours = weekly_hours(calendar.settings.get("working_hours"))
        if not within_hours(zone=zone, hours=hours, span=(start, end)):
            opening = ", ".join(
                f"{opens:%H:%M}-{'24:00' if closes is None else f'{closes:%H:%M}'}"
                for opens, closes in hours.get(local.weekday(), [])
            )
            raise _invalid(
                "start",
                f"{local:%A} {local.isoformat()} to {end.astimezone(zone):%H:%M} is outside "
                f"the practice's working hours ({local:%A}: {opening or 'closed'}; time zone "
                f"{zone.key}). {PICK_A_FREE_SLOT}",
            )

    def _check_overlap_allowed(self, allow_overlap: bool) -> None:
        if allow_overlap and self.principal.role != Role.OWNER:
            raise PermissionDenied("Only the owner may book a deliberate overlap.")

    async def _save(self, appointment: Appointment, *, check_overlap: bool, **changes: Any) -> None:
        """Write the appointment, first checking (when asked: a booking or a move that is not
        an owner's deliberate overlap) that its time meets no other active appointment of the
        professional, deliberate overlaps included. The check runs in the transaction and
        names the conflict. Bookings of one professional take turns on a lock (PostgreSQL;
        SQLite writers hold the file's write lock), so the check sees every booking committed
        before ours; the exclusion constraint (between appointments not booked as overlaps)
        is a backstop that never fires: no savepoint is kept around the write for it (two
        round trips a booking). Were it to fire, the whole request fails (REST answers 409)."""
        if check_overlap:
            wanted = _Span(
                appointment.id,
                appointment.professional_id,
                changes.get("start_at", appointment.start_at),
                changes.get("end_at", appointment.end_at),
            )
            # Two overlapping inserts racing on the exclusion constraint instead could
            # deadlock each other (a 500).
            await self.appointments.lock_professional(wanted.professional_id)
            clash = await self.appointments.first_overlap(
                wanted.professional_id, wanted.start, wanted.end, ignore=wanted.id
            )
            if clash is not None:
                raise await self._overlap_with_alternatives(wanted, clash)
        for field, value in changes.items():
            setattr(appointment, field, value)
        self.appointments.add(appointment)
        await self.session.flush()

    async def _overlap_with_alternatives(self, wanted: _Span, clash: Appointment) -> Conflict:
        """The clash, named, with the two free slots nearest the wanted time (not in the past
        when the wanted time is not)."""
        error = _overlap(clash.id, clash.start_at, clash.end_at)
        length, now = wanted.end - wanted.start, utcnow()
        earliest = wanted.start - NEARBY_BEFORE
        if wanted.start > now:
            earliest = max(earliest, now)
        window = (earliest, wanted.start + NEARBY_AFTER)
        slots = await self.free_slots(wanted.professional_id, window, length, ignore=wanted.id)
        nearest = sorted(sorted(slots, key=lambda slot: abs(slot[0] - wanted.start))[:2])
        error.extra["nearby_free_slots"] = [
            {"start": start.isoformat(), "end": end.isoformat()} for start, end in nearest
        ]
        return error

    async def free_slots(
        self,
        professional: uuid.UUID,
        window: tuple[datetime, datetime],
        length: timedelta,
        ignore: uuid.UUID | None = None,
        *,
        calendar: PracticeCalendar | None = None,
    ) -> list[tuple[datetime, datetime]]:
        """Working hours minus the professional's active appointments, in the practice's zone."""
        calendar = calendar or await self.calendar()
        busy = await self.appointments.busy_between(professional, *window, ignore=ignore)
        return free_slots(
            zone=ZoneInfo(calendar.timezone),
            hours=weekly_hours(calendar.settings.get("working_hours")),
            busy=busy,
            window=window,
            duration=length,
        )

    async def _record_change(
        self, appointment: Appointment, before: Status | None, after: Status, reason: str | None
    ) -> None:
        self.appointments.add(
            AppointmentStatusChange(
                appointment_id=appointment.id,
                from_status=before,
                to_status=after,
                changed_by=self.principal.user_id,
                changed_by_api_key_id=self.principal.api_key_id,
                reason=reason,
            )
        )
        await self.session.flush()

    async def calendar(self) -> PracticeCalendar:
        calendar = await TenantRepository(self.session).calendar(self.tenant_id)
        if calendar is None:
            raise NotFound("Practice not found.")
        return calendar

    async def professional_for(self, requested: uuid.UUID | None) -> uuid.UUID:
        """Default: the caller when an owner, else the practice's only professional. A named
        professional must be an owner of the practice (those GET /tenant/professionals lists)."""
        if requested is None:
            if self.principal.role == Role.OWNER and self.principal.user_id is not None:
                return self.principal.user_id
            only = await sole_professional(self.session)
            if only is None:
                raise Conflict(
                    "Say which professional the appointment is with: this practice has no "
                    "single default (GET /tenant/professionals or the list_professionals tool "
                    "lists them).",
                )
            return only
        if requested == self.principal.user_id and self.principal.role == Role.OWNER:
            return requested  # the caller was vetted as an owner of this practice just now
        if not await MembershipRepository(self.session).is_owner(requested):
            # An assistant or viewer is no more a professional than a stranger: the same 404.
            raise ReferenceNotFound(
                "professional_id",
                "No professional with this id in this practice (appointments are with its "
                "owners: GET /tenant/professionals).",
            )
        return requested

    async def _changed(
        self,
        appointment: Appointment,
        event_type: str,
        *,
        booked: bool = False,
        patient: Patient | None = None,
        **extra: str,
    ) -> None:
        """Webhook event and reminder plan follow every change, in the same transaction."""
        if self.outbox is None:
            raise RuntimeError("AppointmentService needs the outbox to change appointments")
        await replan_reminder(
            self.session, self.outbox, appointment, booked=booked, patient=patient
        )
        await emit(self.session, self.outbox, event_type, {**_event_data(appointment), **extra})

    async def default_minutes(self) -> int:
        tenant = await TenantRepository(self.session).get(self.tenant_id)
        minutes = (tenant.settings if tenant else {}).get("default_appointment_minutes")
        return int(minutes) if isinstance(minutes, int) else DEFAULT_MINUTES


class _Span(NamedTuple):
    """Where an appointment wants to be (its id is None until first saved)."""

    id: uuid.UUID | None
    professional_id: uuid.UUID
    start: datetime
    end: datetime


def _event_data(appointment: Appointment) -> dict[str, object]:
    """What webhook receivers get; never the notes."""
    return {
        "id": str(appointment.id),
        "patient_id": str(appointment.patient_id),
        "professional_id": str(appointment.professional_id),
        "start": appointment.start_at.isoformat(),
        "end": appointment.end_at.isoformat(),
        "status": appointment.status.value,
        "location": appointment.location,
        "series_id": str(appointment.series_id) if appointment.series_id else None,
    }


def _overlap(
    existing: uuid.UUID, start: datetime, end: datetime, occurrence: datetime | None = None
) -> Conflict:
    extra = {
        "conflicting_appointment_id": str(existing),
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    if occurrence is not None:
        extra["occurrence_start"] = occurrence.isoformat()
    return Conflict("The professional already has an appointment at this time.", extra=extra)


async def availability(
    session: AsyncSession,
    principal: Principal,
    window: tuple[datetime, datetime],
    minutes: int,
    professional_id: uuid.UUID | None,
    *,
    bookable_only: bool = False,
) -> tuple[str, uuid.UUID, list[tuple[datetime, datetime]]]:
    """Free slots of one professional: working hours minus active appointments. With
    `bookable_only` (AI agents), only the slots still to come: those an agent may book."""
    service = AppointmentService(session, principal, bookable_only=bookable_only)
    professional = await service.professional_for(professional_id)
    calendar = await service.calendar()
    start, end = searched_window(*window)
    if service.bookable_only:
        start = max(start, utcnow())
    slots = await service.free_slots(
        professional, (start, end), timedelta(minutes=minutes), calendar=calendar
    )
    return calendar.timezone, professional, slots

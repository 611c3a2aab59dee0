"""Queries of appointments (tenant-scoped)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Uuid,
    bindparam,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatusChange,
    AppointmentView,
    Status,
)
from clinicflow.appointments.schemas import MAX_MINUTES
from clinicflow.core.hotread import HotRead
from clinicflow.core.models import row_columns

LONGEST = timedelta(minutes=MAX_MINUTES)
_LOCK_PROFESSIONAL = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


@dataclass(frozen=True, slots=True)
class AppointmentFilters:
    start_from: datetime | None = None
    start_to: datetime | None = None
    patient_id: uuid.UUID | None = None
    professional_id: uuid.UUID | None = None
    status: Status | None = None


class AppointmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, entity: Appointment | AppointmentStatusChange) -> None:
        self.session.add(entity)

    async def get(self, appointment_id: uuid.UUID) -> Appointment | None:
        statement = select(Appointment).where(Appointment.id == appointment_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def first_overlap(
        self,
        professional_id: uuid.UUID,
        start: datetime,
        end: datetime,
        ignore: uuid.UUID | None = None,
    ) -> Appointment | None:
        """An active appointment of the professional meeting [start, end), deliberate overlaps
        included: one booked with `allow_overlap` still blocks the bookings after it."""
        values = _meeting_values(professional_id, start, end, ignore)
        with self.session.no_autoflush:  # check before the (maybe moved) row is written
            found = await self.session.execute(_overlap_statement(ignore is not None), values)
            return found.scalars().first()

    async def first_overlap_outside(
        self,
        professional_id: uuid.UUID,
        start: datetime,
        end: datetime,
        outside: Collection[uuid.UUID],
    ) -> Appointment | None:
        """`first_overlap` for a set of appointments moving together: one not in the set."""
        values = _meeting_values(professional_id, start, end, None)
        statement = (
            select(Appointment).where(*_MEETING, Appointment.id.not_in(list(outside))).limit(1)
        )
        with self.session.no_autoflush:
            return (await self.session.execute(statement, values)).scalars().first()

    async def upcoming_of_patient(self, patient_id: uuid.UUID, now: datetime) -> list[Appointment]:
        """The patient's scheduled or confirmed appointments that have not started."""
        statement = select(Appointment).where(
            Appointment.patient_id == patient_id,
            Appointment.status.in_((Status.SCHEDULED, Status.CONFIRMED)),
            Appointment.start_at > now,
        )
        return list(
            (await self.session.execute(statement.order_by(Appointment.start_at))).scalars()
        )

    async def lock_professional(self, professional_id: uuid.UUID) -> None:
        """Until the transaction ends (PostgreSQL; SQLite writers hold the file's write lock)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                _LOCK_PROFESSIONAL, {"key": f"appointments:{professional_id}"}
            )

    async def series_members(
        self, series_id: uuid.UUID, starting_at: datetime | None
    ) -> list[Appointment]:
        statement = select(Appointment).where(
            Appointment.series_id == series_id, Appointment.status.in_(ACTIVE_STATUSES)
        )
        if starting_at is not None:
            statement = statement.where(Appointment.start_at >= starting_at)
        return list(
            (await self.session.execute(statement.order_by(Appointment.start_at))).scalars()
        )

    async def busy_between(
        self,
        professional_id: uuid.UUID,
        start: datetime,
        end: datetime,
        ignore: uuid.UUID | None = None,
    ) -> list[tuple[datetime, datetime]]:
        values = _meeting_values(professional_id, start, end, ignore)
        with self.session.no_autoflush:  # also asked while a moved appointment is not yet written
            rows = await _busy_read(ignore is not None).rows(self.session, values)
            return [(row.start_at, row.end_at) for row in rows]

    async def page(
        self, filters: AppointmentFilters, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[AppointmentView]:
        """By (start_at, id), keyset after the cursor; one extra row for `more`. Column rows:
        a page is only shown, so it skips the entities' identity map and instance state."""
        values = {name: value for name, value in _filter_values(filters).items() if value}
        if after is not None:
            values["after_start"], values["after_id"] = after
        read = _page_read(frozenset(values))
        rows = await read.rows(self.session, {**values, "limit": limit + 1})
        return cast(list[AppointmentView], rows)

    async def stream(self, filters: AppointmentFilters) -> AsyncIterator[Appointment]:
        """Every matching appointment from a server-side cursor, in list order (for exports)."""
        statement = _filtered(filters).order_by(Appointment.start_at, Appointment.id)
        rows = await self.session.stream_scalars(statement.execution_options(yield_per=1000))
        async for appointment in rows:
            yield appointment

    async def history(self, appointment_id: uuid.UUID) -> list[AppointmentStatusChange]:
        statement = (
            select(AppointmentStatusChange)
            .where(AppointmentStatusChange.appointment_id == appointment_id)
            .order_by(AppointmentStatusChange.changed_at, AppointmentStatusChange.id)
        )
        return list((await self.session.execute(statement)).scalars())


# Bound parameters carry their types: a column whose type comes from a foreign key has none yet
# when this module is imported (SQLite then refused the bare UUID).
# Active appointments of a professional meeting [start, end). No appointment lasts longer than
# MAX_MINUTES, so one meeting the range starts after `start - MAX_MINUTES`: that lower bound
# lets the agenda index stop there instead of walking the professional's whole history.
# Equalities rather than IN: an IN list is expanded at each execution, which a hot read,
# compiled once, does not do.
_ACTIVE = or_(*(Appointment.status == status for status in sorted(ACTIVE_STATUSES)))
_MEETING: tuple[ColumnElement[bool], ...] = (
    Appointment.professional_id == bindparam("professional_id", type_=Uuid()),
    _ACTIVE,
    Appointment.start_at > bindparam("earliest", type_=Appointment.__table__.c.start_at.type),
    Appointment.start_at < bindparam("end", type_=Appointment.__table__.c.start_at.type),
    Appointment.end_at > bindparam("start", type_=Appointment.__table__.c.end_at.type),
)
_NOT_IGNORED = Appointment.id != bindparam("ignore", type_=Appointment.__table__.c.id.type)


def _meeting_values(
    professional_id: uuid.UUID, start: datetime, end: datetime, ignore: uuid.UUID | None
) -> dict[str, object]:
    values: dict[str, object] = {"professional_id": professional_id, "start": start, "end": end}
    values["earliest"] = start - LONGEST
    if ignore is not None:
        values["ignore"] = ignore
    return values


# Built once each (building a statement cost about what running it did); values bound later.
@functools.cache
def _busy_read(ignoring: bool) -> HotRead:
    statement = select(Appointment.start_at, Appointment.end_at).where(*_MEETING)
    return HotRead(statement.where(_NOT_IGNORED) if ignoring else statement)


@functools.cache
def _overlap_statement(ignoring: bool) -> Select[Appointment]:
    statement = select(Appointment).where(*_MEETING)
    return (statement.where(_NOT_IGNORED) if ignoring else statement).limit(1)


def _filter_values(filters: AppointmentFilters) -> dict[str, object]:
    return {
        "start_from": filters.start_from,
        "start_to": filters.start_to,
        "patient_id": filters.patient_id,
        "professional_id": filters.professional_id,
        "status": filters.status,
    }


_PAGE_CONDITIONS: dict[str, ColumnElement[bool]] = {
    "start_from": Appointment.start_at >= bindparam("start_from"),
    "start_to": Appointment.start_at < bindparam("start_to"),
    "patient_id": Appointment.patient_id == bindparam("patient_id", type_=Uuid()),
    "professional_id": Appointment.professional_id == bindparam("professional_id", type_=Uuid()),
    "status": Appointment.status == bindparam("status"),
    "after_start": tuple_(Appointment.start_at, Appointment.id)
    > tuple_(
        bindparam("after_start", type_=Appointment.__table__.c.start_at.type),
        bindparam("after_id", type_=Appointment.__table__.c.id.type),
    ),
}


@functools.cache
def _page_read(given: frozenset[str]) -> HotRead:
    """A page's read for the filters given, built once per combination (building one cost
    about as much as running it); the values are bound at execution."""
    conditions = [condition for name, condition in _PAGE_CONDITIONS.items() if name in given]
    return HotRead(
        select(*row_columns(Appointment))
        .where(*conditions)
        .order_by(Appointment.start_at, Appointment.id)
        .limit(bindparam("limit", type_=Integer()))
    )


def _filtered(filters: AppointmentFilters) -> Select[Appointment]:
    statement = select(Appointment)
    if filters.start_from:
        statement = statement.where(Appointment.start_at >= filters.start_from)
    if filters.start_to:
        statement = statement.where(Appointment.start_at < filters.start_to)
    if filters.patient_id:
        statement = statement.where(Appointment.patient_id == filters.patient_id)
    if filters.professional_id:
        statement = statement.where(Appointment.professional_id == filters.professional_id)
    if filters.status:
        statement = statement.where(Appointment.status == filters.status)
    return statement

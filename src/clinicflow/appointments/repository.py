"""Queries of appointments (tenant-scoped)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatusChange,
    Status,
)
from clinicflow.appointments.schemas import MAX_MINUTES

LONGEST = timedelta(minutes=MAX_MINUTES)


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
        """An active, non-overlap-allowed appointment of the professional meeting [start, end)."""
        statement = select(Appointment).where(
            Appointment.professional_id == professional_id,
            Appointment.status.in_(ACTIVE_STATUSES),
            Appointment.allow_overlap.is_(False),
            *_meeting(start, end),
        )
        if ignore is not None:
            statement = statement.where(Appointment.id != ignore)
        with self.session.no_autoflush:  # check before the (maybe moved) row is written
            return (await self.session.execute(statement.limit(1))).scalars().first()

    async def lock_professional(self, professional_id: uuid.UUID) -> None:
        """Until the transaction ends (PostgreSQL; SQLite writers hold the file's write lock)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"appointments:{professional_id}"},
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
        statement = select(Appointment.start_at, Appointment.end_at).where(
            Appointment.professional_id == professional_id,
            Appointment.status.in_(ACTIVE_STATUSES),
            *_meeting(start, end),
        )
        if ignore is not None:
            statement = statement.where(Appointment.id != ignore)
        with self.session.no_autoflush:  # also asked while a refused booking is still pending
            return [(row.start_at, row.end_at) for row in await self.session.execute(statement)]

    async def page(
        self, filters: AppointmentFilters, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Appointment]:
        statement = (
            _filtered(filters).order_by(Appointment.start_at, Appointment.id).limit(limit + 1)
        )
        if after is not None:
            start, last_id = after
            statement = statement.where(
                tuple_(Appointment.start_at, Appointment.id) > tuple_(start, last_id)
            )
        return list((await self.session.execute(statement)).scalars())

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


def _meeting(start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    """Appointments meeting [start, end). No appointment lasts longer than MAX_MINUTES, so one
    meeting the range starts after `start - MAX_MINUTES`: that lower bound lets the agenda index
    stop there instead of walking the professional's whole history."""
    return (
        Appointment.start_at > start - LONGEST,
        Appointment.start_at < end,
        Appointment.end_at > start,
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

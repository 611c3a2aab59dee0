"""Queries of calendar tokens and of the agenda a feed shows (tenant-scoped)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.models import Appointment
from clinicflow.calendar.models import CalendarToken
from clinicflow.patients.models import Patient


class CalendarRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, token: CalendarToken) -> None:
        self.session.add(token)

    async def for_user(self, user_id: uuid.UUID) -> CalendarToken | None:
        statement = select(CalendarToken).where(CalendarToken.user_id == user_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def by_hash(self, token_hash: str) -> CalendarToken | None:
        statement = select(CalendarToken).where(CalendarToken.token_hash == token_hash)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def delete_for_user(self, user_id: uuid.UUID) -> int:
        statement = delete(CalendarToken).where(CalendarToken.user_id == user_id)
        result = await self.session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def agenda(
        self, professional_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[tuple[Appointment, str]]:
        """The professional's appointments starting in [start, end), with patient names."""
        statement = (
            select(Appointment, Patient.full_name)
            .join(Patient, (Patient.tenant_id == Appointment.tenant_id)
                  & (Patient.id == Appointment.patient_id))
            .where(Appointment.professional_id == professional_id,
                   Appointment.start_at >= start, Appointment.start_at < end)
            .order_by(Appointment.start_at, Appointment.id)
        )  # fmt: skip
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

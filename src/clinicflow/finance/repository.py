"""Queries of financial entries (tenant-scoped; deleted entries never returned)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.finance.models import FinancialEntry


class EntryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, entry: FinancialEntry) -> None:
        self.session.add(entry)

    async def any_stored(self) -> bool:
        """Whether the practice has ever recorded an entry (deleted ones count)."""
        statement = select(select(FinancialEntry.id).exists())
        return bool((await self.session.execute(statement)).scalar_one())

    async def get(self, entry_id: uuid.UUID) -> FinancialEntry | None:
        statement = select(FinancialEntry).where(
            FinancialEntry.id == entry_id, FinancialEntry.deleted_at.is_(None)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def page(
        self, start: date | None, end: date | None, limit: int, after: tuple[date, uuid.UUID] | None
    ) -> list[FinancialEntry]:
        statement = (
            select(FinancialEntry)
            .where(FinancialEntry.deleted_at.is_(None))
            .order_by(FinancialEntry.due_date, FinancialEntry.id)
            .limit(limit + 1)
        )
        if start:
            statement = statement.where(FinancialEntry.due_date >= start)
        if end:
            statement = statement.where(FinancialEntry.due_date <= end)
        if after:
            due, last_id = after
            statement = statement.where(
                tuple_(FinancialEntry.due_date, FinancialEntry.id) > tuple_(due, last_id)
            )
        return list((await self.session.execute(statement)).scalars())

    async def stream(self, start: date | None, end: date | None) -> AsyncIterator[FinancialEntry]:
        """Every matching entry from a server-side cursor, in list order (for exports)."""
        statement = (
            select(FinancialEntry)
            .where(FinancialEntry.deleted_at.is_(None))
            .order_by(FinancialEntry.due_date, FinancialEntry.id)
        )
        if start:
            statement = statement.where(FinancialEntry.due_date >= start)
        if end:
            statement = statement.where(FinancialEntry.due_date <= end)
        rows = await self.session.stream_scalars(statement.execution_options(yield_per=1000))
        async for entry in rows:
            yield entry

    async def for_patient(self, patient_id: uuid.UUID) -> list[FinancialEntry]:
        statement = (
            select(FinancialEntry)
            .where(FinancialEntry.patient_id == patient_id, FinancialEntry.deleted_at.is_(None))
            .order_by(FinancialEntry.due_date, FinancialEntry.id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def touching_window(
        self, first_day: date, last_day: date, paid_from: datetime, paid_until: datetime
    ) -> list[FinancialEntry]:
        """Entries due in the window or paid in it (bounds in the practice's time zone)."""
        statement = select(FinancialEntry).where(
            FinancialEntry.deleted_at.is_(None),
            or_(
                FinancialEntry.due_date.between(first_day, last_day),
                and_(FinancialEntry.paid_at >= paid_from, FinancialEntry.paid_at < paid_until),
            ),
        )
        return list((await self.session.execute(statement)).scalars())

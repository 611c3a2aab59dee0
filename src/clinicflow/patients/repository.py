"""Queries of patients (tenant-scoped; soft-deleted rows are never returned)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.patients.models import Patient, PatientSearchTerm
from clinicflow.patients.search import like_pattern


@dataclass(frozen=True, slots=True)
class PatientFilters:
    q: str | None = None
    active: bool | None = None
    birth_date_from: date | None = None
    birth_date_to: date | None = None


class PatientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, patient: Patient) -> None:
        self.session.add(patient)

    async def get(self, patient_id: uuid.UUID) -> Patient | None:
        statement = select(Patient).where(Patient.id == patient_id, Patient.deleted_at.is_(None))
        return (await self.session.execute(statement)).scalar_one_or_none()

    def add_terms(self, patient_id: uuid.UUID, terms: set[str]) -> None:
        """The search terms of a patient written just now (see `patients.search`)."""
        self.session.add_all(PatientSearchTerm(patient_id=patient_id, term=t) for t in terms)

    async def replace_terms(self, patient_id: uuid.UUID, terms: set[str]) -> None:
        """Make the patient's stored terms exactly `terms`, touching only what changed."""
        stored = set(
            (
                await self.session.execute(
                    select(PatientSearchTerm.term).where(PatientSearchTerm.patient_id == patient_id)
                )
            ).scalars()
        )
        if stale := stored - terms:
            await self.session.execute(
                delete(PatientSearchTerm).where(
                    PatientSearchTerm.patient_id == patient_id, PatientSearchTerm.term.in_(stale)
                )
            )
        self.add_terms(patient_id, terms - stored)

    async def remove_terms(self, patient_id: uuid.UUID) -> None:
        """A deleted patient is found by nothing."""
        await self.session.execute(
            delete(PatientSearchTerm).where(PatientSearchTerm.patient_id == patient_id)
        )

    async def names(self, patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        statement = select(Patient.id, Patient.full_name).where(
            Patient.id.in_(patient_ids), Patient.deleted_at.is_(None)
        )
        return {row.id: row.full_name for row in await self.session.execute(statement)}

    async def count_active(self) -> int:
        statement = select(func.count()).select_from(Patient).where(Patient.deleted_at.is_(None))
        return (await self.session.execute(statement)).scalar_one()

    async def page(
        self, filters: PatientFilters, limit: int, after: tuple[str, uuid.UUID] | None
    ) -> list[Patient]:
        """Ordered by (full_name, id), keyset after the cursor; one extra row for `more`."""
        statement = _filtered(filters).order_by(Patient.full_name, Patient.id).limit(limit + 1)
        if after is not None:
            name, last_id = after
            # A row-value comparison, which PostgreSQL answers from the (tenant_id, full_name, id)
            # index; the equivalent OR form is applied as a filter over every earlier row.
            statement = statement.where(
                tuple_(Patient.full_name, Patient.id) > tuple_(name, last_id)
            )
        return list((await self.session.execute(statement)).scalars())

    async def stream(self, filters: PatientFilters) -> AsyncIterator[Patient]:
        """Every matching patient from a server-side cursor, in list order (for exports)."""
        statement = _filtered(filters).order_by(Patient.full_name, Patient.id)
        rows = await self.session.stream_scalars(statement.execution_options(yield_per=1000))
        async for patient in rows:
            yield patient


def _filtered(filters: PatientFilters) -> Select[Patient]:
    statement = select(Patient).where(Patient.deleted_at.is_(None))
    if filters.q:
        statement = statement.where(Patient.search_text.like(like_pattern(filters.q), escape="\\"))
    if filters.active is not None:
        statement = statement.where(Patient.active.is_(filters.active))
    if filters.birth_date_from:
        statement = statement.where(Patient.birth_date >= filters.birth_date_from)
    if filters.birth_date_to:
        statement = statement.where(Patient.birth_date <= filters.birth_date_to)
    return statement

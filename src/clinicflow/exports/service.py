"""Exports of a practice's lists: checked and audited in the request, streamed afterwards from a
server-side cursor in a session of their own (the request's session is closed by then)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clinicflow.appointments.repository import AppointmentFilters, AppointmentRepository
from clinicflow.appointments.schemas import AppointmentRead
from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.errors import NotFound
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.exports.formats import Row, csv_chunks, xlsx_chunks
from clinicflow.exports.schemas import ExportFormat
from clinicflow.finance.repository import EntryRepository
from clinicflow.finance.schemas import EntryRead
from clinicflow.patients import custom_fields
from clinicflow.patients.repository import PatientFilters, PatientRepository
from clinicflow.patients.schemas import PatientRead
from clinicflow.tenants.repository import TenantRepository

RowSource = Callable[[AsyncSession], AsyncIterator[Row]]


@dataclass(frozen=True, slots=True)
class Export:
    """A checked export: its columns and how to read its rows in a fresh session."""

    name: str
    header: list[str]
    rows: RowSource


def _columns(schema: type[BaseModel], skip: frozenset[str] = frozenset()) -> list[str]:
    return [name for name in schema.model_fields if name not in skip]


def _values(item: BaseModel, columns: list[str]) -> Row:
    """The API's own JSON rendering (ISO dates as the API writes them), except that amounts stay
    Decimal so XLSX gets numeric cells and CSV their exact digits."""
    rendered = item.model_dump(mode="json")
    raw = {column: getattr(item, column) for column in columns}
    return [
        raw[column] if isinstance(raw[column], Decimal) else rendered[column] for column in columns
    ]


class ExportService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def patients(self, filters: PatientFilters) -> Export:
        tenant = await TenantRepository(self.session).get(self.tenant_id)
        if tenant is None:
            raise NotFound("Practice not found.")
        keys = [d.key for d in custom_fields.definitions_from(tenant.settings)]
        columns = _columns(PatientRead, frozenset({"custom_fields"}))

        async def rows(session: AsyncSession) -> AsyncIterator[Row]:
            async for patient in PatientRepository(session).stream(filters):
                shown = PatientRead.model_validate(patient)
                yield _values(shown, columns) + [shown.custom_fields.get(key) for key in keys]

        return Export("patients", columns + [f"custom_fields.{key}" for key in keys], rows)

    def appointments(self, filters: AppointmentFilters) -> Export:
        columns = _columns(AppointmentRead)

        async def rows(session: AsyncSession) -> AsyncIterator[Row]:
            async for appointment in AppointmentRepository(session).stream(filters):
                yield _values(AppointmentRead.model_validate(appointment), columns)

        return Export("appointments", columns, rows)

    def financial_entries(self, start: date | None, end: date | None) -> Export:
        columns = _columns(EntryRead)

        async def rows(session: AsyncSession) -> AsyncIterator[Row]:
            async for entry in EntryRepository(session).stream(start, end):
                yield _values(EntryRead.model_validate(entry), columns)

        return Export("financial-entries", columns, rows)

    async def audit(
        self, export: Export, fmt: ExportFormat, actor: Actor, filters: dict[str, Any]
    ) -> None:
        await audit.record(
            self.session, "export.created", actor=actor, subject_type=export.name,
            details={"format": fmt.value, "filters": filters},
        )  # fmt: skip


async def stream_export(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    export: Export,
    fmt: ExportFormat,
) -> AsyncIterator[bytes]:
    """One read transaction, scoped to the tenant (ORM filter and, on PostgreSQL, RLS through
    the session's after_begin hook), open for as long as the file is being sent."""
    async with sessionmaker() as session:
        await set_session_tenant(session, tenant_id)
        async with session.begin():
            rows = export.rows(session)
            chunks = (
                csv_chunks(export.header, rows)
                if fmt is ExportFormat.CSV
                else xlsx_chunks(export.name, export.header, rows)
            )
            async for chunk in chunks:
                yield chunk

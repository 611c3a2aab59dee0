"""Financial entries and the period summary; an appointment can bill the session fee."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.models import Appointment
from clinicflow.appointments.repository import AppointmentRepository
from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.errors import Conflict, NotFound, ReferenceNotFound, ValidationFailed
from clinicflow.core.models import utcnow
from clinicflow.finance.models import EntryKind, FinancialEntry
from clinicflow.finance.repository import EntryRepository
from clinicflow.finance.schemas import CurrencySummary, EntryCreate, EntryUpdate
from clinicflow.finance.summary import summarise
from clinicflow.patients.repository import PatientRepository
from clinicflow.tenants.models import Tenant
from clinicflow.tenants.repository import TenantRepository

_invalid = ValidationFailed.for_field


class FinanceService:
    """Every write names its actor on the row and in the audit trail (money is evidence)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, actor: Actor) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.actor = actor
        self.entries = EntryRepository(session)

    async def create(self, data: EntryCreate) -> FinancialEntry:
        await self._check_links(data.patient_id, data.appointment_id)
        entry = FinancialEntry(**data.model_dump(), created_by=self.actor.user_id)
        return await self._added(entry)

    async def _added(self, entry: FinancialEntry) -> FinancialEntry:
        self.entries.add(entry)
        await self.session.flush()
        await self._audit("finance.entry_created", entry, {"kind": entry.kind.value})
        return entry

    async def _audit(self, action: str, entry: FinancialEntry, details: dict[str, object]) -> None:
        await audit.record(
            self.session, action, actor=self.actor, subject_type="financial_entry",
            subject_id=entry.id, details=details,
        )  # fmt: skip

    async def get(self, entry_id: uuid.UUID) -> FinancialEntry:
        entry = await self.entries.get(entry_id)
        if entry is None:
            raise NotFound("No financial entry with this id.")
        return entry

    async def update(self, entry_id: uuid.UUID, changes: EntryUpdate) -> FinancialEntry:
        entry = await self.get(entry_id)
        for field, value in changes.model_dump(exclude_unset=True).items():
            if field in ("amount", "due_date") and value is None:
                raise _invalid(field, f"{field} cannot be removed.")
            setattr(entry, field, value)
        entry.updated_by = self.actor.user_id
        await self.session.flush()
        await self._audit(
            "finance.entry_updated", entry, {"fields": sorted(changes.model_fields_set)}
        )
        return entry

    async def delete(self, entry_id: uuid.UUID) -> None:
        entry = await self.get(entry_id)
        entry.deleted_at = utcnow()
        entry.updated_by = self.actor.user_id
        await self._audit("finance.entry_deleted", entry, {})

    async def page(
        self, start: date | None, end: date | None, limit: int, after: tuple[date, uuid.UUID] | None
    ) -> tuple[list[FinancialEntry], bool]:
        rows = await self.entries.page(start, end, limit, after)
        return rows[:limit], len(rows) > limit

    async def summary(self, first_day: date, last_day: date) -> list[CurrencySummary]:
        if last_day < first_day:
            return []  # an empty period: nothing received, nothing due
        zone = ZoneInfo((await self._tenant()).timezone)
        paid_from = datetime.combine(first_day, time.min, zone)
        paid_until = datetime.combine(last_day + timedelta(days=1), time.min, zone)
        entries = await self.entries.touching_window(first_day, last_day, paid_from, paid_until)
        return summarise(entries, first_day, last_day, datetime.now(zone).date(), zone)

    async def charge_appointment(self, appointment_id: uuid.UUID) -> FinancialEntry:
        """An income entry for the appointment at the practice's session fee, due on the
        appointment's day in the practice's time zone (its start is stored in UTC)."""
        appointment = await AppointmentRepository(self.session).get(appointment_id)
        if appointment is None:
            raise NotFound("No appointment with this id.")
        tenant = await self._tenant()
        settings = tenant.settings
        try:
            fee = Decimal(str(settings["session_fee"]))
        except (KeyError, InvalidOperation) as error:
            raise Conflict(
                "Set the practice's session_fee before charging appointments."
            ) from error
        entry = FinancialEntry(
            kind=EntryKind.INCOME, amount=fee.quantize(Decimal("0.01")),
            currency=str(settings.get("currency", "BRL")), due_date=day_of(appointment, tenant),
            patient_id=appointment.patient_id, appointment_id=appointment.id,
            category="session", description="Session fee", created_by=self.actor.user_id,
        )  # fmt: skip
        return await self._added(entry)

    async def _check_links(
        self, patient_id: uuid.UUID | None, appointment_id: uuid.UUID | None
    ) -> None:
        if patient_id and await PatientRepository(self.session).get(patient_id) is None:
            raise ReferenceNotFound("patient_id", "No patient with this id in this practice.")
        if appointment_id and await AppointmentRepository(self.session).get(appointment_id) is None:
            raise ReferenceNotFound(
                "appointment_id", "No appointment with this id in this practice."
            )

    async def _tenant(self) -> Tenant:
        tenant = await TenantRepository(self.session).get(self.tenant_id)
        if tenant is None:
            raise NotFound("Practice not found.")
        return tenant


def day_of(appointment: Appointment, tenant: Tenant) -> date:
    """The appointment's calendar day where the practice is (22:00 in São Paulo is the next
    day in UTC)."""
    return appointment.start_at.astimezone(ZoneInfo(tenant.timezone)).date()

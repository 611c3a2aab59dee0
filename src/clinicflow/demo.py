"""A living demo practice for `make run`: settings with custom patient fields, patients, two
weeks of agenda across every status (with history), records for the owner, finance entries.

Everything goes through the same services as the API, so the rules and the audit trail apply
to demo data too. Dates are relative to today, so the agenda is current whenever it is seeded.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.models import Status
from clinicflow.appointments.schemas import AppointmentCreate
from clinicflow.appointments.service import AppointmentService
from clinicflow.audit.service import Actor
from clinicflow.auth.deps import Principal
from clinicflow.auth.permissions import ROLE_PERMISSIONS
from clinicflow.core.crypto import KeyRing
from clinicflow.finance.models import EntryKind
from clinicflow.finance.schemas import EntryCreate
from clinicflow.finance.service import FinanceService
from clinicflow.notifications.outbox import Outbox
from clinicflow.patients.models import Patient
from clinicflow.patients.schemas import PatientCreate
from clinicflow.patients.service import PatientService
from clinicflow.records.service import RecordService
from clinicflow.tenants.models import Tenant
from clinicflow.tenants.service import update_settings
from clinicflow.tenants.settings_schema import TenantSettingsUpdate

CUSTOM_FIELDS = [
    {"key": "insurance", "label": "Health insurance", "type": "choice",
     "choices": ["none", "Unimed", "Bradesco Saúde", "SulAmérica"]},
    {"key": "referred_by", "label": "Referred by", "type": "text"},
    {"key": "first_visit", "label": "First visit", "type": "date"},
]  # fmt: skip
PATIENTS = (
    ("Maria Conceição Alves", "maria.alves@example.com", "+55 11 98765-4321", "Unimed"),
    ("João Pedro Santos", "joao.santos@example.com", "+55 11 91234-5678", "none"),
    ("Ana Beatriz Lima", None, "+55 21 99876-5432", "Bradesco Saúde"),
    ("Lucas Oliveira", "lucas.oliveira@example.com", None, "SulAmérica"),
    ("Fernanda Rocha", "fernanda.rocha@example.com", "+55 31 98888-1111", "none"),
    ("Rafael Costa", None, "+55 41 97777-2222", "Unimed"),
)
# Past appointments end in one of these; today's and later ones are scheduled or confirmed.
PAST_OUTCOMES = (Status.COMPLETED, Status.COMPLETED, Status.NO_SHOW, Status.CANCELLED)
SESSION_FEE = Decimal("180.00")


async def fill_practice(
    session: AsyncSession, tenant: Tenant, owner_id: uuid.UUID, keys: KeyRing, outbox: Outbox
) -> None:
    """Call inside the practice's tenant scope, right after creating it and its owner."""
    owner = Principal(owner_id, None, tenant.id, "owner", ROLE_PERMISSIONS["owner"])
    actor = owner.actor
    await update_settings(
        session, tenant,
        TenantSettingsUpdate.model_validate({
            "custom_patient_fields": CUSTOM_FIELDS, "default_appointment_minutes": 50,
            "session_fee": str(SESSION_FEE), "currency": "BRL", "reminder_lead_minutes": 1440,
        }),
        actor,
    )  # fmt: skip
    patients = [
        await _patient(session, tenant, actor, outbox, row, n) for n, row in enumerate(PATIENTS)
    ]
    await _agenda(session, tenant, owner, outbox, patients)
    records = RecordService(session, keys, tenant.id)
    await records.create(
        patients[0].id, "Intake: sleep problems for three months; no medication.", "intake", actor
    )
    await records.create(
        patients[0].id, "Session 2: sleep diary reviewed; breathing exercise taught.", "progress",
        actor,
    )  # fmt: skip
    await _finance(session, tenant, actor, patients)


async def _patient(
    session: AsyncSession,
    tenant: Tenant,
    actor: Actor,
    outbox: Outbox,
    row: tuple[str, str | None, str | None, str],
    number: int,
) -> Patient:
    name, email, phone, insurance = row
    first_visit = date.today() - timedelta(days=30 * (number + 1))
    data = PatientCreate(
        full_name=name, email=email, phone=phone, birth_date=date(1980 + 3 * number, 3, 14),
        notes="Prefers morning appointments." if number % 2 else None,
        custom_fields={"insurance": insurance, "first_visit": first_visit.isoformat()},
    )  # fmt: skip
    return await PatientService(session, tenant.id, outbox).create(data, actor)


async def _agenda(
    session: AsyncSession,
    tenant: Tenant,
    owner: Principal,
    outbox: Outbox,
    patients: list[Patient],
) -> None:
    """Two weeks around today: two appointments per working day, in the practice's zone."""
    zone = ZoneInfo(tenant.timezone)
    today = datetime.now(zone).date()
    service = AppointmentService(session, owner, outbox)
    slot = 0
    for offset in range(-7, 8):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for hour in (9, 14):
            start = datetime.combine(day, time(hour), zone).astimezone(UTC)
            patient = patients[slot % len(patients)]
            booked = await service.create(
                AppointmentCreate(patient_id=patient.id, start=start, duration_minutes=50)
            )
            await _move_on(service, booked.id, offset, slot)
            slot += 1


async def _move_on(
    service: AppointmentService, appointment_id: uuid.UUID, offset: int, n: int
) -> None:
    """Past appointments ran their course; upcoming ones are partly confirmed."""
    if offset < 0:
        outcome = PAST_OUTCOMES[n % len(PAST_OUTCOMES)]
        if outcome == Status.COMPLETED:
            for step in (Status.CONFIRMED, Status.ARRIVED, Status.COMPLETED):
                await service.change_status(appointment_id, step, None)
        else:
            await service.change_status(appointment_id, outcome, "demo")
    elif n % 2 == 0:
        await service.change_status(appointment_id, Status.CONFIRMED, None)


async def _finance(
    session: AsyncSession, tenant: Tenant, actor: Actor, patients: list[Patient]
) -> None:
    finance = FinanceService(session, tenant.id, actor)
    today = date.today()
    for number, patient in enumerate(patients):
        paid = number % 3 != 2  # a third of the sessions are still to be paid
        await finance.create(
            EntryCreate(
                kind=EntryKind.INCOME, amount=SESSION_FEE, currency="BRL",
                due_date=today - timedelta(days=number * 3), patient_id=patient.id,
                paid_at=datetime.now(UTC) - timedelta(days=number * 3) if paid else None,
                method="pix" if paid else None, category="session",
                description="Therapy session",
            )
        )  # fmt: skip
    await finance.create(
        EntryCreate(
            kind=EntryKind.EXPENSE, amount=Decimal("1200.00"), currency="BRL",
            due_date=today.replace(day=5), paid_at=datetime.now(UTC), method="transfer",
            category="rent", description="Office rent",
        )
    )  # fmt: skip

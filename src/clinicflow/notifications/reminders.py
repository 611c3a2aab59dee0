"""Appointment reminders: one per appointment, at the practice's lead time, re-planned when the
appointment moves and dropped when it no longer happens."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.models import Appointment, Status
from clinicflow.appointments.repository import AppointmentRepository
from clinicflow.core.models import utcnow
from clinicflow.notifications.models import Channel, Notification
from clinicflow.notifications.outbox import EMAIL, Outbox
from clinicflow.notifications.repository import REMINDER, NotificationRepository
from clinicflow.notifications.templates import appointment_reminder
from clinicflow.patients.models import Patient
from clinicflow.patients.repository import PatientRepository
from clinicflow.tenants.repository import TenantRepository

ACTIVE = (Status.SCHEDULED, Status.CONFIRMED)


async def replan_reminder(
    session: AsyncSession,
    outbox: Outbox,
    appointment: Appointment,
    *,
    booked: bool = False,
    patient: Patient | None = None,
) -> None:
    """Drop the pending reminder and queue the right one, if any is due to exist. Called after
    every create, move or status change, so the outcome depends only on the current state.
    `booked`: the appointment was created in this transaction, so no reminder of it is pending
    yet; `patient`: its patient, as the caller read it in this transaction. Each saves a query
    per booking."""
    if not booked:
        for pending in await NotificationRepository(session).pending_reminders(appointment.id):
            await outbox.cancel(session, pending)
    if appointment.status not in ACTIVE or appointment.start_at <= utcnow():
        return
    if patient is None:
        patient = await PatientRepository(session).get(appointment.patient_id)
    if patient is None or not patient.email or patient.deleted_at is not None:
        return
    tenant = await TenantRepository(session).calendar(appointment.tenant_id)
    lead = (tenant.settings or {}).get("reminder_lead_minutes") if tenant else None
    if tenant is None or not isinstance(lead, int):
        return
    zone = ZoneInfo(tenant.timezone or "UTC")
    message = appointment_reminder(
        to=patient.email, patient_name=patient.full_name, practice=tenant.name,
        starts=appointment.start_at.astimezone(zone), location=appointment.location,
    )  # fmt: skip
    notification = Notification(
        channel=Channel.EMAIL, kind=REMINDER, recipient=patient.email, subject=message.subject,
        appointment_id=appointment.id, patient_id=patient.id,
        scheduled_for=max(utcnow(), appointment.start_at - timedelta(minutes=lead)),
    )  # fmt: skip
    outbox.queue_for_tenant(
        session, notification, EMAIL,
        {"to": message.to, "subject": message.subject, "text": message.text, "html": message.html},
    )  # fmt: skip


async def replan_patient_reminders(session: AsyncSession, outbox: Outbox, patient: Patient) -> None:
    """After the patient's e-mail or name changed, or the patient was deleted: every pending
    reminder of their appointments is dropped and, unless the patient is deleted, queued again
    for the upcoming ones with the current address and name (none without an e-mail). A
    reminder a worker has already claimed is on its way and is not touched."""
    for pending in await NotificationRepository(session).pending_reminders_of_patient(patient.id):
        await outbox.cancel(session, pending)
    if patient.deleted_at is not None:
        return
    for appointment in await AppointmentRepository(session).upcoming_of_patient(
        patient.id, utcnow()
    ):
        # `booked`: nothing of it is pending any more (dropped just above).
        await replan_reminder(session, outbox, appointment, booked=True, patient=patient)

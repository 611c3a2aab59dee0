"""A practice's notifications: e-mail to a patient, webhook events on demand, the history."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.errors import Conflict, ReferenceNotFound
from clinicflow.core.models import utcnow
from clinicflow.notifications.models import Channel, Notification
from clinicflow.notifications.outbox import EMAIL, Outbox
from clinicflow.notifications.repository import NotificationFilters, NotificationRepository
from clinicflow.notifications.schemas import PatientEmailCreate, WebhookEventCreate
from clinicflow.notifications.templates import patient_email
from clinicflow.patients.repository import PatientRepository
from clinicflow.tenants.repository import TenantRepository
from clinicflow.webhooks.service import WebhookService

PATIENT_EMAIL = "patient_email"


class NotificationService:
    def __init__(self, session: AsyncSession, outbox: Outbox, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.outbox = outbox
        self.tenant_id = tenant_id
        self.notifications = NotificationRepository(session)

    async def email_patient(self, data: PatientEmailCreate) -> Notification:
        patient = await PatientRepository(self.session).get(data.patient_id)
        if patient is None:
            raise ReferenceNotFound("patient_id", "No patient with this id in this practice.")
        if not patient.email:
            raise Conflict("This patient has no e-mail address.")
        tenant = await TenantRepository(self.session).get(self.tenant_id)
        message = patient_email(
            to=patient.email, practice=tenant.name if tenant else "", subject=data.subject,
            text=data.text,
        )  # fmt: skip
        notification = Notification(
            channel=Channel.EMAIL, kind=PATIENT_EMAIL, recipient=patient.email,
            subject=message.subject, patient_id=patient.id, scheduled_for=utcnow(),
        )  # fmt: skip
        payload = {"to": message.to, "subject": message.subject, "text": message.text,
                   "html": message.html}  # fmt: skip
        self.outbox.queue_for_tenant(self.session, notification, EMAIL, payload)
        await self.session.flush()
        return notification

    async def send_event(self, data: WebhookEventCreate) -> list[Notification]:
        queued = await WebhookService(self.session, self.outbox).emit(data.event_type, data.data)
        await self.session.flush()
        return queued

    async def page(
        self, filters: NotificationFilters, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> tuple[list[Notification], bool]:
        rows = await self.notifications.page(filters, limit, after)
        return rows[:limit], len(rows) > limit

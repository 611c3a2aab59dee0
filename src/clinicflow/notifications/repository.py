"""Every outbox query: claim due messages under a lease, then settle them with the claim token."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.models import Appointment
from clinicflow.notifications.models import Notification, OutboxMessage, OutboxStatus

REMINDER = "reminder"


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, message: OutboxMessage) -> None:
        self.session.add(message)

    async def claim(
        self, *, token: uuid.UUID, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[OutboxMessage]:
        """Take up to `limit` due messages: pending ones whose time has come, and claimed ones
        whose worker let the lease expire (it crashed or hung). SKIP LOCKED lets any number of
        workers claim side by side without waiting on, or taking, each other's rows."""
        due = or_(
            and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.available_at <= now),
            and_(
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.lease_expires_at <= now,
            ),
        )
        candidates = (
            select(OutboxMessage.id)
            .where(due)
            .order_by(OutboxMessage.available_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # ignored by SQLite, where writers serialise
        )
        claimed = await self.session.scalars(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(candidates.scalar_subquery()))
            .values(
                status=OutboxStatus.SENDING,
                attempts=OutboxMessage.attempts + 1,
                claim_token=token,
                lease_expires_at=now + lease,
            )
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
        return claimed.all()

    async def settle(
        self,
        message_id: uuid.UUID,
        token: uuid.UUID,
        *,
        status: OutboxStatus,
        now: datetime,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """Record the outcome, only if this worker still holds the claim (a worker whose lease
        ran out must not overwrite the outcome of the one that took over)."""
        values: dict[str, object] = {
            "status": status,
            "claim_token": None,
            "lease_expires_at": None,
        }
        if status == OutboxStatus.SENT:
            values["sent_at"] = now
        if retry_at is not None:
            values["available_at"] = retry_at
        if error is not None:
            values["last_error"] = error[:500]
        result = await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.claim_token == token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def cancel_pending(self, message_id: uuid.UUID) -> bool:
        """Drop a message no worker has taken yet; False when it is already on its way."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.CANCELLED)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True, slots=True)
class NotificationFilters:
    status: str | None = None
    channel: str | None = None
    kind: str | None = None
    webhook_id: uuid.UUID | None = None


class NotificationRepository:
    """Tenant-scoped by `core.tenancy` (and RLS): only the session's practice is visible."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, notification: Notification) -> None:
        self.session.add(notification)

    async def get(self, notification_id: uuid.UUID) -> Notification | None:
        return await self.session.scalar(
            select(Notification).where(Notification.id == notification_id)
        )

    async def pending_reminders(self, appointment_id: uuid.UUID) -> list[Notification]:
        statement = select(Notification).where(
            Notification.appointment_id == appointment_id,
            Notification.kind == REMINDER,
            Notification.status == OutboxStatus.PENDING,
        )
        return list(await self.session.scalars(statement))

    async def pending_reminders_of_patient(self, patient_id: uuid.UUID) -> list[Notification]:
        """Through the patient's appointments (indexed by patient, and reminders by
        appointment): the reminders not yet taken by a worker."""
        appointments = select(Appointment.id).where(Appointment.patient_id == patient_id)
        statement = select(Notification).where(
            Notification.appointment_id.in_(appointments.scalar_subquery()),
            Notification.kind == REMINDER,
            Notification.status == OutboxStatus.PENDING,
        )
        return list(await self.session.scalars(statement))

    async def pending_for_webhook(self, webhook_id: uuid.UUID) -> list[Notification]:
        statement = select(Notification).where(
            Notification.webhook_id == webhook_id, Notification.status == OutboxStatus.PENDING
        )
        return list(await self.session.scalars(statement))

    async def page(
        self,
        filters: NotificationFilters,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> list[Notification]:
        """Newest first; one extra row tells whether there is a next page."""
        statement = (
            select(Notification)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit + 1)
        )
        for column, value in (
            (Notification.status, filters.status),
            (Notification.channel, filters.channel),
            (Notification.kind, filters.kind),
            (Notification.webhook_id, filters.webhook_id),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if after:
            created, last_id = after
            statement = statement.where(
                or_(
                    Notification.created_at < created,
                    and_(Notification.created_at == created, Notification.id < last_id),
                )
            )
        return list(await self.session.scalars(statement))

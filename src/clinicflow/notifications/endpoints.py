"""/notifications: e-mail a patient or send a webhook event; the delivery history (SPEC §3)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import Conflict, NotFound
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import PageParams, cursor_fields, encode_cursor, page_params
from clinicflow.notifications.models import Channel, OutboxStatus
from clinicflow.notifications.outbox import OutboxDep
from clinicflow.notifications.repository import NotificationFilters
from clinicflow.notifications.schemas import (
    NotificationCreate,
    NotificationList,
    NotificationRead,
    NotificationsQueued,
    PatientEmailCreate,
)
from clinicflow.notifications.service import NotificationService

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/notifications", tags=["notifications"])
Sender = Annotated[Principal, Depends(require(Permission.NOTIFICATIONS_SEND))]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send an e-mail to a patient or a webhook event",
    responses=problems(NotFound, Conflict),
)
async def send_notification(
    body: Annotated[NotificationCreate, Body()],
    principal: Sender,
    session: SessionDep,
    outbox: OutboxDep,
) -> NotificationsQueued:
    """Owner or assistant. `channel: email` queues an e-mail to the patient (404 for an unknown
    patient, 409 when the patient has no e-mail); `channel: webhook` queues a manual event,
    named `custom.<name>`, to every webhook subscribed to that name or to `custom.*` (422 for
    one of ClinicFlow's own event types, which only ClinicFlow sends). Delivery is durable and
    retried with backoff. 423 when read-only.
    Answers 202 with the queued notifications."""
    service = NotificationService(session, outbox, principal.require_tenant())
    if isinstance(body, PatientEmailCreate):
        queued = [await service.email_patient(body)]
    else:
        queued = await service.send_event(body)
    return NotificationsQueued(items=[NotificationRead.model_validate(n) for n in queued])


@router.get("", summary="List sent and queued notifications")
async def list_notifications(
    principal: Sender,
    session: SessionDep,
    outbox: OutboxDep,
    page: Annotated[PageParams, Depends(page_params)],
    status_: Annotated[
        OutboxStatus | None, Query(alias="status", description="Only in this delivery status.")
    ] = None,
    channel: Annotated[Channel | None, Query(description="Only e-mails or webhooks.")] = None,
    kind: Annotated[
        str | None,
        Query(
            max_length=32,
            description="Only this kind: reminder, patient_email, webhook_event, webhook_ping.",
        ),
    ] = None,
    webhook_id: Annotated[
        uuid.UUID | None, Query(description="Only deliveries to this webhook.")
    ] = None,
) -> NotificationList:
    """Owner or assistant. E-mails, reminders and webhook deliveries, newest first, with status,
    attempts and last error; filter by status, channel, kind and webhook. Cursor-paginated
    (`limit`, `cursor`; follow `next_cursor`)."""
    filters = NotificationFilters(status=status_, channel=channel, kind=kind, webhook_id=webhook_id)
    rows, more = await NotificationService(session, outbox, principal.require_tenant()).page(
        filters, page.limit, cursor_fields(page.cursor, datetime.fromisoformat, uuid.UUID)
    )
    last = rows[-1] if rows else None
    return NotificationList(
        items=[NotificationRead.model_validate(row) for row in rows],
        next_cursor=encode_cursor([last.created_at.isoformat(), str(last.id)])
        if more and last
        else None,
    )

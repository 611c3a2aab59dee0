"""/webhooks: signed event deliveries for n8n triggers and other receivers (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.core.pagination import PageParams, cursor_fields, encode_cursor, page_params
from clinicflow.notifications.outbox import OutboxDep
from clinicflow.notifications.repository import NotificationFilters
from clinicflow.notifications.schemas import NotificationList, NotificationRead
from clinicflow.notifications.service import NotificationService
from clinicflow.webhooks.schemas import WebhookCreate, WebhookCreated, WebhookList, WebhookRead
from clinicflow.webhooks.service import WebhookService

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Manager = Annotated[Principal, Depends(require(Permission.INTEGRATIONS_MANAGE))]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Subscribe (secret shown once)")
async def create_webhook(
    body: WebhookCreate, principal: Manager, session: SessionDep, outbox: OutboxDep
) -> WebhookCreated:
    principal.require_tenant()
    subscription, secret = await WebhookService(session, outbox).create(
        body.url, list(body.events), body.secret, principal.actor
    )
    return WebhookCreated.model_validate(
        {**WebhookRead.model_validate(subscription).model_dump(), "secret": secret}
    )


@router.get("", summary="The practice's webhooks (secrets never shown again)")
async def list_webhooks(principal: Manager, session: SessionDep, outbox: OutboxDep) -> WebhookList:
    principal.require_tenant()
    rows = await WebhookService(session, outbox).list_active()
    return WebhookList(items=[WebhookRead.model_validate(row) for row in rows])


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Unsubscribe")
async def delete_webhook(
    webhook_id: uuid.UUID, principal: Manager, session: SessionDep, outbox: OutboxDep
) -> None:
    principal.require_tenant()
    await WebhookService(session, outbox).delete(webhook_id, principal.actor)


@router.post(
    "/{webhook_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a signed test event (type webhook.ping)",
)
async def ping_webhook(
    webhook_id: uuid.UUID, principal: Manager, session: SessionDep, outbox: OutboxDep
) -> NotificationRead:
    principal.require_tenant()
    return NotificationRead.model_validate(await WebhookService(session, outbox).ping(webhook_id))


@router.get("/{webhook_id}/deliveries", summary="This webhook's delivery log (newest first)")
async def list_deliveries(
    webhook_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    outbox: OutboxDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> NotificationList:
    tenant_id = principal.require_tenant()
    await WebhookService(session, outbox).get(webhook_id)
    rows, more = await NotificationService(session, outbox, tenant_id).page(
        NotificationFilters(webhook_id=webhook_id),
        page.limit,
        cursor_fields(page.cursor, datetime.fromisoformat, uuid.UUID),
    )
    last = rows[-1] if rows else None
    return NotificationList(
        items=[NotificationRead.model_validate(row) for row in rows],
        next_cursor=encode_cursor([last.created_at.isoformat(), str(last.id)])
        if more and last
        else None,
    )

"""/webhooks: signed event deliveries for n8n triggers and other receivers (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import Conflict
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import PageParams, cursor_fields, encode_cursor, page_params
from clinicflow.notifications.outbox import OutboxDep
from clinicflow.notifications.repository import NotificationFilters
from clinicflow.notifications.schemas import NotificationList, NotificationRead
from clinicflow.notifications.service import NotificationService
from clinicflow.webhooks.schemas import WebhookCreate, WebhookCreated, WebhookList, WebhookRead
from clinicflow.webhooks.service import WebhookService

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/webhooks", tags=["webhooks"])
Manager = Annotated[Principal, Depends(require(Permission.INTEGRATIONS_MANAGE))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a URL to webhook events",
    responses=problems(Conflict),
)
async def create_webhook(
    body: WebhookCreate, principal: Manager, session: SessionDep, outbox: OutboxDep
) -> WebhookCreated:
    """Owner only. Deliveries are signed POSTs (`X-ClinicFlow-Signature: t=...,v1=<HMAC-SHA256>`)
    for the chosen `events`, retried with backoff. The `secret` (generated when omitted) is in
    this answer only. In production the URL must resolve to a public address (422 otherwise).
    409 past 25 webhooks per practice; 423 when read-only. Answers 201; audited as
    webhook.created."""
    principal.require_tenant()
    subscription, secret = await WebhookService(session, outbox).create(
        body.url, list(body.events), body.secret, principal.actor
    )
    return WebhookCreated.model_validate(
        {**WebhookRead.model_validate(subscription).model_dump(), "secret": secret}
    )


@router.get("", summary="List webhook subscriptions")
async def list_webhooks(
    principal: Manager,
    session: SessionDep,
    outbox: OutboxDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> WebhookList:
    """Owner only. Active subscriptions with URL and events, oldest first; secrets are never
    shown again. Cursor-paginated (`limit`, `cursor`; follow `next_cursor`)."""
    principal.require_tenant()
    rows, more = await WebhookService(session, outbox).page(
        page.limit, cursor_fields(page.cursor, datetime.fromisoformat, uuid.UUID)
    )
    last = rows[-1] if rows else None
    return WebhookList(
        items=[WebhookRead.model_validate(row) for row in rows],
        next_cursor=encode_cursor([last.created_at.isoformat(), str(last.id)])
        if more and last
        else None,
    )


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a webhook subscription"
)
async def delete_webhook(
    webhook_id: uuid.UUID, principal: Manager, session: SessionDep, outbox: OutboxDep
) -> None:
    """Owner only. Stops deliveries to the URL. 404 for an unknown id; 423 when read-only.
    Answers 204; audited as webhook.deleted."""
    principal.require_tenant()
    await WebhookService(session, outbox).delete(webhook_id, principal.actor)


@router.post(
    "/{webhook_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a test event to a webhook",
)
async def ping_webhook(
    webhook_id: uuid.UUID, principal: Manager, session: SessionDep, outbox: OutboxDep
) -> NotificationRead:
    """Owner only. Queues a signed `webhook.ping` delivery to the subscription, to check the
    receiver's signature verification. Answers 202 with the queued delivery; follow it in the
    delivery log. 404 for an unknown id."""
    principal.require_tenant()
    return NotificationRead.model_validate(await WebhookService(session, outbox).ping(webhook_id))


@router.get("/{webhook_id}/deliveries", summary="List a webhook's deliveries")
async def list_deliveries(
    webhook_id: uuid.UUID,
    principal: Manager,
    session: SessionDep,
    outbox: OutboxDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> NotificationList:
    """Owner only. The subscription's deliveries, newest first, with status, attempts and last
    error. Cursor-paginated (`limit`, `cursor`; follow `next_cursor`). 404 for an unknown id."""
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

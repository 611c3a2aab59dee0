"""Webhook subscriptions and the events the services emit to them."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import service as audit
from clinicflow.core.crypto import Ciphertext, DecryptionError, MissingKeyError, associated_data
from clinicflow.core.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from clinicflow.core.models import new_id, utcnow
from clinicflow.core.tenancy import current_tenant
from clinicflow.notifications.models import Channel, Notification, OutboxStatus
from clinicflow.notifications.outbox import WEBHOOK, Outbox
from clinicflow.notifications.repository import NotificationRepository
from clinicflow.tenants.repository import TenantRepository
from clinicflow.webhooks.delivery import UnsafeWebhookURL, require_safe_url
from clinicflow.webhooks.events import PING_EVENT_TYPE
from clinicflow.webhooks.models import WebhookSubscription
from clinicflow.webhooks.repository import WebhookRepository

MAX_WEBHOOKS = 25  # per practice: every event is delivered to each one that listens

EVENT = "webhook_event"
PING = "webhook_ping"
logger = structlog.get_logger("clinicflow.webhooks")


def _aad(subscription: WebhookSubscription) -> bytes:
    return associated_data("webhooks", subscription.tenant_id, subscription.id)


class WebhookService:
    def __init__(self, session: AsyncSession, outbox: Outbox) -> None:
        self.session = session
        self.outbox = outbox
        self.webhooks = WebhookRepository(session)

    async def create(
        self, url: str, events: list[str], secret: str | None, actor: audit.Actor
    ) -> tuple[WebhookSubscription, str]:
        """The secret is returned once; only its ciphertext is stored. At most MAX_WEBHOOKS
        per practice: every event is delivered to each one that listens."""
        try:
            await require_safe_url(url, allow_private=self.outbox.settings.allows_private_targets)
        except UnsafeWebhookURL as error:
            raise ValidationFailed.for_field("url", str(error)) from error
        tenant_id = current_tenant(self.session)
        assert tenant_id is not None  # the route requires a practice
        # Count then insert, across processes: the practice's webhook creations take turns.
        await TenantRepository(self.session).lock(tenant_id)
        if await self.webhooks.count_active() >= MAX_WEBHOOKS:
            raise Conflict(
                f"A practice has at most {MAX_WEBHOOKS} webhooks; delete one it no longer uses "
                "(one URL can listen to many events)."
            )
        secret = secret or f"whsec_{secrets.token_urlsafe(32)}"
        subscription = WebhookSubscription(
            id=new_id(), tenant_id=tenant_id, url=url,
            events=sorted(set(events)), created_by=actor.user_id, secret_key_id="", secret=b"",
        )  # fmt: skip
        sealed = self.outbox.key_ring.encrypt(secret, aad=_aad(subscription))
        subscription.secret_key_id, subscription.secret = sealed.key_id, sealed.blob
        self.webhooks.add(subscription)
        await self.session.flush()
        await audit.record(
            self.session, "webhook.created", actor=actor, subject_type="webhook",
            subject_id=subscription.id, details={"url": url, "events": subscription.events},
        )  # fmt: skip
        return subscription, secret

    @property
    def _allow_private(self) -> bool:
        """Development and tests call receivers on localhost; production never may."""
        return self.outbox.settings.allows_private_targets

    async def page(
        self, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> tuple[list[WebhookSubscription], bool]:
        rows = await self.webhooks.page(limit, after)
        return rows[:limit], len(rows) > limit

    async def get(self, webhook_id: uuid.UUID) -> WebhookSubscription:
        subscription = await self.webhooks.get_active(webhook_id)
        if subscription is None:
            raise NotFound("No webhook with this id.")
        return subscription

    async def delete(self, webhook_id: uuid.UUID, actor: audit.Actor) -> None:
        """Soft delete (the delivery log stays); deliveries not yet sent are dropped."""
        subscription = await self.get(webhook_id)
        subscription.deleted_at = utcnow()
        for notification in await NotificationRepository(self.session).pending_for_webhook(
            webhook_id
        ):
            await self.outbox.cancel(self.session, notification)
        await self.session.flush()
        await audit.record(
            self.session, "webhook.deleted", actor=actor, subject_type="webhook",
            subject_id=webhook_id,
        )  # fmt: skip

    async def ping(self, webhook_id: uuid.UUID) -> Notification:
        """503 naming the key when the secret cannot be opened: a ping is asked for, so its
        caller hears at once why it cannot be signed (nothing is queued)."""
        subscription = await self.get(webhook_id)
        try:
            secret = self._secret(subscription)
        except MissingKeyError as error:
            raise ServiceUnavailable(
                f"This webhook's signing secret is sealed with encryption key {error.key_id!r}, "
                "which this server does not have: the operator must add it to ENCRYPTION_KEYS "
                "and restart.",
                extra={"missing_key_id": error.key_id},
            ) from error
        except DecryptionError as error:
            raise ServiceUnavailable(
                "This webhook's signing secret cannot be opened; create the webhook again."
            ) from error
        queued = self._queue(
            subscription, secret, PING_EVENT_TYPE, {"webhook_id": str(subscription.id)}, PING
        )
        await self.session.flush()
        return queued

    async def emit(self, event_type: str, data: dict[str, Any]) -> list[Notification]:
        """One signed delivery per subscription listening to `event_type`, in this transaction.

        A subscription whose secret cannot be opened (sealed with a key ENCRYPTION_KEYS no
        longer lists, or damaged) does not fail the change that emitted the event: its delivery
        is recorded dead at once, with the reason, in its delivery log, and nothing is sent
        (an unsigned or wrongly signed event would be worse than none)."""
        queued = []
        for subscription in await self.webhooks.listening(event_type):
            try:
                secret = self._secret(subscription)
            except (MissingKeyError, DecryptionError) as error:
                queued.append(self._unsigned(subscription, event_type, error))
                continue
            queued.append(self._queue(subscription, secret, event_type, data, EVENT))
        return queued

    def _secret(self, subscription: WebhookSubscription) -> str:
        return self.outbox.key_ring.decrypt(
            Ciphertext(subscription.secret_key_id, subscription.secret), aad=_aad(subscription)
        )

    def _unsigned(
        self,
        subscription: WebhookSubscription,
        event_type: str,
        error: MissingKeyError | DecryptionError,
    ) -> Notification:
        if isinstance(error, MissingKeyError):
            reason = (
                f"not sent: the signing secret is sealed with encryption key {error.key_id!r}, "
                "which ENCRYPTION_KEYS does not list"
            )
        else:
            reason = "not sent: the signing secret cannot be opened"
        logger.error(
            "webhook.secret_unreadable", webhook_id=str(subscription.id), event_type=event_type,
            error=reason,
        )  # fmt: skip
        notification = Notification(
            id=new_id(), channel=Channel.WEBHOOK, kind=EVENT, recipient=subscription.url,
            subject=None, event_type=event_type, webhook_id=subscription.id,
            status=OutboxStatus.DEAD, attempts=0, last_error=reason, scheduled_for=utcnow(),
        )  # fmt: skip
        NotificationRepository(self.session).add(notification)
        return notification

    def _queue(
        self,
        subscription: WebhookSubscription,
        secret: str,
        event_type: str,
        data: dict[str, Any],
        kind: str,
    ) -> Notification:
        event_id = new_id()
        now = utcnow()
        body = json.dumps(
            {
                "id": str(event_id),
                "type": event_type,
                "created_at": now.isoformat(),
                "tenant_id": str(subscription.tenant_id),
                "data": data,
            },
            separators=(",", ":"),
            default=str,
        )
        notification = Notification(
            id=event_id, channel=Channel.WEBHOOK, kind=kind, recipient=subscription.url,
            subject=None, event_type=event_type, webhook_id=subscription.id,
            status=OutboxStatus.PENDING, scheduled_for=now,
        )  # fmt: skip
        payload = {
            "url": subscription.url,
            "secret": secret,
            "body": body,
            "event_id": str(event_id),
        }
        return self.outbox.queue_for_tenant(self.session, notification, WEBHOOK, payload)


async def emit(
    session: AsyncSession, outbox: Outbox | None, event_type: str, data: dict[str, Any]
) -> None:
    """What domain services call after a change (no-op for read-only callers without outbox)."""
    if outbox is None:
        raise RuntimeError(f"{event_type} emitted by a service built without an outbox")
    await WebhookService(session, outbox).emit(event_type, data)

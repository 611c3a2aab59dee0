"""Every webhook subscription query (tenant-scoped by `core.tenancy` and RLS)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.hotread import HotRead
from clinicflow.webhooks.events import receives
from clinicflow.webhooks.models import WebhookSubscription

_SUBSCRIBED = HotRead(
    select(WebhookSubscription.id, WebhookSubscription.events).where(
        WebhookSubscription.deleted_at.is_(None)
    )
)


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, subscription: WebhookSubscription) -> None:
        self.session.add(subscription)

    async def get_active(self, webhook_id: uuid.UUID) -> WebhookSubscription | None:
        return await self.session.scalar(
            select(WebhookSubscription).where(
                WebhookSubscription.id == webhook_id, WebhookSubscription.deleted_at.is_(None)
            )
        )

    async def listening(self, event_type: str) -> list[WebhookSubscription]:
        """Active subscriptions to `event_type` (by name, or `custom.*` for a custom event),
        oldest first. Asked on every write; most practices have none for most events, which is
        found without loading any entity."""
        ids = [
            row.id
            for row in await _SUBSCRIBED.rows(self.session, {})
            if receives(row.events, event_type)
        ]
        if not ids:
            return []
        statement = (
            select(WebhookSubscription)
            .where(WebhookSubscription.id.in_(ids))
            .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        )
        return list(await self.session.scalars(statement))

    async def page(
        self, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[WebhookSubscription]:
        """Active subscriptions oldest first, one more than `limit` (whether a next page is)."""
        statement = select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None))
        if after is not None:
            key = tuple_(WebhookSubscription.created_at, WebhookSubscription.id)
            statement = statement.where(key > tuple_(*after))
        statement = statement.order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        return list(await self.session.scalars(statement.limit(limit + 1)))

    async def count_active(self) -> int:
        statement = select(func.count()).where(WebhookSubscription.deleted_at.is_(None))
        return int((await self.session.execute(statement)).scalar_one())

"""Every webhook subscription query (tenant-scoped by `core.tenancy` and RLS)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.webhooks.models import WebhookSubscription


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

    async def list_active(self) -> list[WebhookSubscription]:
        statement = (
            select(WebhookSubscription)
            .where(WebhookSubscription.deleted_at.is_(None))
            .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        )
        return list(await self.session.scalars(statement))

"""Queries of invitations (tenant-scoped)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.invitations.models import Invitation


def _live(now: datetime) -> ColumnElement[bool]:
    return and_(
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, invitation: Invitation) -> None:
        self.session.add(invitation)

    async def get(self, invitation_id: uuid.UUID) -> Invitation | None:
        statement = select(Invitation).where(Invitation.id == invitation_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_live_by_hash(self, token_hash: str, now: datetime) -> Invitation | None:
        statement = select(Invitation).where(Invitation.token_hash == token_hash, _live(now))
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def accept(self, token_hash: str, now: datetime) -> Invitation | None:
        """Atomically mark a live invitation accepted: single use under concurrency."""
        statement = (
            update(Invitation)
            .where(Invitation.token_hash == token_hash, _live(now))
            .values(accepted_at=now)
            .returning(Invitation)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_pending(self, now: datetime) -> list[Invitation]:
        statement = select(Invitation).where(_live(now)).order_by(Invitation.created_at)
        return list((await self.session.execute(statement)).scalars())

    async def revoke_pending_for(self, email: str, now: datetime) -> None:
        await self.session.execute(
            update(Invitation).where(Invitation.email == email, _live(now)).values(revoked_at=now)
        )

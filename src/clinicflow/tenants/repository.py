"""Queries of tenants, plans and memberships."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.tenants.models import Membership, Plan, Tenant


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        tenant = await self.session.get(Tenant, tenant_id)
        return tenant if tenant is not None and tenant.deleted_at is None else None

    async def get_by_name(self, name: str) -> Tenant | None:
        statement = select(Tenant).where(Tenant.name == name, Tenant.deleted_at.is_(None))
        return (await self.session.execute(statement)).scalars().first()

    async def get_plan_by_name(self, name: str) -> Plan | None:
        statement = select(Plan).where(Plan.name == name)
        return (await self.session.execute(statement)).scalar_one_or_none()

    def add(self, entity: Tenant | Plan) -> None:
        self.session.add(entity)


class MembershipRepository:
    """Tenant-scoped: sees the memberships of the session's tenant only."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_for_user(self, user_id: uuid.UUID) -> Membership | None:
        statement = select(Membership).where(Membership.user_id == user_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    def add(self, membership: Membership) -> None:
        self.session.add(membership)

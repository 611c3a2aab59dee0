"""Creating tenants and adding members."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.tenancy import tenant_context
from clinicflow.tenants.models import Membership, Role, Tenant
from clinicflow.tenants.repository import MembershipRepository, TenantRepository
from clinicflow.users.models import User


async def create_tenant(
    session: AsyncSession,
    *,
    name: str,
    timezone: str = "UTC",
    plan_id: uuid.UUID | None = None,
) -> Tenant:
    tenant = Tenant(name=name.strip(), timezone=timezone, plan_id=plan_id, settings={})
    TenantRepository(session).add(tenant)
    await session.flush()
    return tenant


async def add_member(session: AsyncSession, tenant: Tenant, user: User, role: Role) -> Membership:
    """Add `user` to `tenant`; the tenant becomes the user's default if they had none."""
    async with tenant_context(session, tenant.id):
        membership = Membership(tenant_id=tenant.id, user_id=user.id, role=role)
        MembershipRepository(session).add(membership)
        if user.default_tenant_id is None:
            user.default_tenant_id = tenant.id
        await session.flush()
    return membership

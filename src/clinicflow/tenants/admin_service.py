"""The platform admin's work on practices and plans: never any clinical data."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.errors import Conflict, NotFound
from clinicflow.core.models import utcnow
from clinicflow.core.tenancy import tenant_context
from clinicflow.tenants.admin_schemas import PlanBody, PlanPatch, TenantAdminUpdate
from clinicflow.tenants.models import Plan, Tenant
from clinicflow.tenants.repository import PlatformRepository, TenantRepository
from clinicflow.tenants.service import create_tenant
from clinicflow.users.repository import UserRepository


class PlatformService:
    def __init__(self, session: AsyncSession, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self.tenants = TenantRepository(session)
        self.platform = PlatformRepository(session)

    async def create_tenant(self, name: str, timezone: str, plan_id: uuid.UUID | None) -> Tenant:
        if plan_id is not None:
            await self.plan(plan_id)
        tenant = await create_tenant(self.session, name=name, timezone=timezone, plan_id=plan_id)
        await self._audit("tenant.created", tenant.id, {"name": tenant.name})
        return tenant

    async def tenant(self, tenant_id: uuid.UUID) -> Tenant:
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound("No practice with this id.")
        return tenant

    async def page(
        self, q: str | None, limit: int, after: uuid.UUID | None
    ) -> tuple[list[tuple[Tenant, int]], bool]:
        rows = await self.platform.tenants_page(q, limit, after)
        return [await self.with_member_count(tenant) for tenant in rows[:limit]], len(rows) > limit

    async def with_member_count(self, tenant: Tenant) -> tuple[Tenant, int]:
        """Members are counted inside the practice's own scope (RLS needs no bypass), so every
        answer about a practice, one or a page, carries the same count."""
        await self.session.flush()
        async with tenant_context(self.session, tenant.id):
            return tenant, await self.platform.count_members()

    async def update(self, tenant_id: uuid.UUID, changes: TenantAdminUpdate) -> Tenant:
        tenant = await self.tenant(tenant_id)
        if changes.name is not None:
            tenant.name = changes.name.strip()
        if changes.timezone is not None:
            tenant.timezone = changes.timezone
        await self.session.flush()
        await self._audit("tenant.updated", tenant.id, changes.model_dump(exclude_unset=True))
        return tenant

    async def delete(self, tenant_id: uuid.UUID) -> None:
        """Soft: the practice disappears from every read and its members lose access. Like a
        member's removal, it stops being anyone's default practice, so their next login lands
        in a practice they still belong to (or none) instead of one they cannot act in."""
        (await self.tenant(tenant_id)).deleted_at = utcnow()
        await UserRepository(self.session).clear_default_tenant(tenant_id)
        await self._audit("tenant.deleted", tenant_id, {})

    async def set_read_only(self, tenant_id: uuid.UUID, enabled: bool) -> Tenant:
        tenant = await self.tenant(tenant_id)
        tenant.read_only = enabled
        await self._audit("tenant.read_only_changed", tenant_id, {"enabled": enabled})
        return tenant

    async def set_plan(self, tenant_id: uuid.UUID, plan_id: uuid.UUID | None) -> Tenant:
        tenant = await self.tenant(tenant_id)
        if plan_id is not None:
            await self.plan(plan_id)
        tenant.plan_id = plan_id
        await self._audit(
            "tenant.plan_changed", tenant_id, {"plan_id": str(plan_id) if plan_id else None}
        )
        return tenant

    async def plan(self, plan_id: uuid.UUID) -> Plan:
        plan = await self.tenants.get_plan(plan_id)
        if plan is None:
            raise NotFound("No plan with this id.")
        return plan

    async def create_plan(self, body: PlanBody) -> Plan:
        plan = Plan(**body.model_dump())
        self.tenants.add(plan)
        await self._flush_unique_name()
        await self._audit_plan("plan.created", plan.id, body.model_dump())
        return plan

    async def update_plan(self, plan_id: uuid.UUID, changes: PlanPatch) -> Plan:
        """A plan's limits bind every practice on it: the change is audited with the values
        before and after."""
        plan = await self.plan(plan_id)
        changed = changes.model_dump(exclude_unset=True)
        before = {field: getattr(plan, field) for field in changed}
        for field, value in changed.items():
            setattr(plan, field, value)
        await self._flush_unique_name()
        await self._audit_plan("plan.updated", plan.id, {"from": before, "to": changed})
        return plan

    async def _flush_unique_name(self) -> None:
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as error:
            raise Conflict("A plan with this name exists already.") from error

    async def _audit_plan(
        self, action: str, plan_id: uuid.UUID, details: dict[str, object]
    ) -> None:
        await audit.record(
            self.session, action, actor=self.actor, subject_type="plan",
            subject_id=plan_id, details=details,
        )  # fmt: skip

    async def _audit(self, action: str, tenant_id: uuid.UUID, details: dict[str, object]) -> None:
        await audit.record(
            self.session, action, actor=self.actor, subject_type="tenant",
            subject_id=tenant_id, details=details,
        )  # fmt: skip

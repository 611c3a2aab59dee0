"""Creating tenants and adding members."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.apikeys.repository import ApiKeyRepository
from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.errors import (
    READ_ONLY_DETAIL,
    Conflict,
    NotFound,
    PlanLimitExceeded,
    TenantReadOnly,
)
from clinicflow.core.models import utcnow
from clinicflow.core.tenancy import tenant_context
from clinicflow.patients import custom_fields
from clinicflow.tenants.models import Membership, Role, Tenant
from clinicflow.tenants.repository import (
    MembershipRepository,
    PlatformRepository,
    TenantRepository,
)
from clinicflow.tenants.schemas import PracticeProfile, ProfessionalList, ProfessionalRead
from clinicflow.tenants.settings_schema import DEFAULT_WORKING_HOURS, TenantSettingsUpdate
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository

DEFAULT_MINUTES = 50  # an appointment's length when neither the request nor the practice says


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


def ensure_writable(tenant: Tenant) -> None:
    """423 for a write to a practice in read-only mode that no caller's credential carries:
    the platform admin's (who acts in no practice) or a public link's (an invitation)."""
    if tenant.read_only:
        raise TenantReadOnly(READ_ONLY_DETAIL)


async def ensure_member_capacity(session: AsyncSession, tenant: Tenant) -> None:
    """402 naming the limit when the practice's plan has no room for another member."""
    plan = await TenantRepository(session).get_plan(tenant.plan_id) if tenant.plan_id else None
    if plan is None or plan.max_members is None:
        return
    await TenantRepository(session).lock(tenant.id)  # parallel acceptances count in turn
    async with tenant_context(session, tenant.id):
        members = await PlatformRepository(session).count_members()
    if members >= plan.max_members:
        raise PlanLimitExceeded(
            f"The {plan.name} plan allows at most {plan.max_members} members.",
            extra={"limit": "max_members", "max": plan.max_members},
        )


async def ensure_api_access(session: AsyncSession, tenant: Tenant) -> None:
    """402 when the practice's plan has no API access: keys would be refused at every use."""
    if not await plan_allows_api(session, tenant):
        raise PlanLimitExceeded(
            "This practice's plan does not include API access.", extra={"limit": "api_access"}
        )


async def plan_allows_api(session: AsyncSession, tenant: Tenant) -> bool:
    if tenant.plan_id is None:
        return True
    plan = await TenantRepository(session).get_plan(tenant.plan_id)
    return plan is None or plan.api_access


async def add_member(session: AsyncSession, tenant: Tenant, user: User, role: Role) -> Membership:
    """Add `user` to `tenant`; the tenant becomes the user's default if they had none."""
    await ensure_member_capacity(session, tenant)
    async with tenant_context(session, tenant.id):
        membership = Membership(tenant_id=tenant.id, user_id=user.id, role=role)
        MembershipRepository(session).add(membership)
        if user.default_tenant_id is None:
            user.default_tenant_id = tenant.id
        await session.flush()
    return membership


async def professionals(session: AsyncSession) -> list[tuple[Membership, User]]:
    """Who appointments are booked with: the practice's owners (the clinicians; SPEC §2)."""
    return await MembershipRepository(session).owners_with_users()


async def sole_professional(session: AsyncSession) -> uuid.UUID | None:
    """The default professional wherever one may be left out: the only one there is."""
    found = await professionals(session)
    return found[0][1].id if len(found) == 1 else None


async def professional_list(session: AsyncSession) -> ProfessionalList:
    found = [ProfessionalRead(id=user.id, full_name=user.full_name) for _, user in
             await professionals(session)]  # fmt: skip
    return ProfessionalList(
        items=found, default_professional_id=found[0].id if len(found) == 1 else None
    )


async def practice_profile(session: AsyncSession, tenant_id: uuid.UUID) -> PracticeProfile:
    """Name, time zone, working hours, professionals, custom-field definitions; nothing else."""
    tenant = await TenantRepository(session).get(tenant_id)
    if tenant is None:
        raise NotFound("Practice not found.")
    staff = await professional_list(session)
    minutes = tenant.settings.get("default_appointment_minutes")
    return PracticeProfile(
        id=tenant.id,
        name=tenant.name,
        timezone=tenant.timezone,
        working_hours=tenant.settings.get("working_hours") or DEFAULT_WORKING_HOURS,
        default_appointment_minutes=minutes if isinstance(minutes, int) else DEFAULT_MINUTES,
        professionals=staff.items,
        default_professional_id=staff.default_professional_id,
        custom_patient_fields=custom_fields.definitions_from(tenant.settings),
    )


class MemberService:
    """Members of the session's tenant. A practice always keeps at least one owner."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.memberships = MembershipRepository(session)

    async def list(self) -> list[tuple[Membership, User]]:
        return await self.memberships.list_with_users()

    async def change_role(self, user_id: uuid.UUID, role: Role, actor: Actor) -> Membership:
        membership = await self._get(user_id)
        if membership.role == role:
            return membership
        if membership.role == Role.OWNER:
            await self._refuse_last_owner("demote")
        previous = membership.role
        membership.role = role
        await self.session.flush()
        await audit.record(
            self.session, "member.role_changed", actor=actor, subject_type="user",
            subject_id=user_id, details={"from": previous.value, "to": role.value},
        )  # fmt: skip
        if previous == Role.OWNER:
            await self._suspend_keys_of(user_id, actor)
        return membership

    async def remove(self, user_id: uuid.UUID, actor: Actor) -> None:
        membership = await self._get(user_id)
        if membership.role == Role.OWNER:
            await self._refuse_last_owner("remove")
        await self.memberships.delete(membership)
        await audit.record(
            self.session, "member.removed", actor=actor, subject_type="user",
            subject_id=user_id, details={"role": membership.role.value},
        )  # fmt: skip
        await self._suspend_keys_of(user_id, actor)
        user = await UserRepository(self.session).get(user_id)
        if user is not None and user.default_tenant_id == membership.tenant_id:
            user.default_tenant_id = None  # later logins must not land in this practice

    async def _suspend_keys_of(self, user_id: uuid.UUID, actor: Actor) -> None:
        """API keys outlive no one's authority: a former owner's keys stop until confirmed."""
        suspended = await ApiKeyRepository(self.session).suspend_created_by(user_id, utcnow())
        if suspended:
            await audit.record(
                self.session, "api_key.suspended", actor=actor, subject_type="user",
                subject_id=user_id, details={"keys": [str(key.id) for key in suspended]},
            )  # fmt: skip

    async def _get(self, user_id: uuid.UUID) -> Membership:
        membership = await self.memberships.get_for_user(user_id)
        if membership is None:
            raise NotFound("No member with this id in this practice.")
        return membership

    async def _refuse_last_owner(self, verb: str) -> None:
        await self.memberships.lock_owners()
        if await self.memberships.count_owners() <= 1:
            raise Conflict(f"Cannot {verb} the last owner; make another member owner first.")


async def update_settings(
    session: AsyncSession, tenant: Tenant, changes: TenantSettingsUpdate, actor: Actor
) -> Tenant:
    """Name and time zone are columns; the rest lives in the settings document."""
    sent = changes.model_dump(mode="json", exclude_unset=True)
    if "name" in sent and sent["name"] is not None:
        tenant.name = sent.pop("name").strip()
    if "timezone" in sent and sent["timezone"] is not None:
        tenant.timezone = sent.pop("timezone")
    sent = {key: value for key, value in sent.items() if key not in ("name", "timezone")}
    tenant.settings = {**tenant.settings, **sent}  # a new dict, so the JSON change is tracked
    await session.flush()
    await audit.record(
        session, "tenant.settings_changed", actor=actor, subject_type="tenant",
        subject_id=tenant.id, details={"fields": sorted(changes.model_fields_set)},
    )  # fmt: skip
    return tenant

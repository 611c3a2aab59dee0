"""/tenant: the caller's practice and its members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.core.errors import NotFound
from clinicflow.tenants.models import Membership
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.schemas import (
    MemberList,
    MemberRead,
    MemberUpdate,
    PracticeProfile,
    ProfessionalList,
    TenantRead,
)
from clinicflow.tenants.service import (
    MemberService,
    practice_profile,
    professional_list,
    update_settings,
)
from clinicflow.tenants.settings_schema import TenantSettingsUpdate
from clinicflow.users.models import User

router = APIRouter(prefix="/tenant", tags=["tenant"])
MembersReader = Annotated[Principal, Depends(require(Permission.MEMBERS_READ))]
MembersManager = Annotated[Principal, Depends(require(Permission.MEMBERS_MANAGE))]
SettingsManager = Annotated[Principal, Depends(require(Permission.SETTINGS_MANAGE))]
SettingsReader = Annotated[Principal, Depends(require(Permission.SETTINGS_READ))]
PracticeReader = Annotated[Principal, Depends(require(Permission.PRACTICE_READ))]


@router.get("", summary="Your practice and its settings (assistants read, owners change)")
async def read_tenant(principal: SettingsReader, session: SessionDep) -> TenantRead:
    tenant = await TenantRepository(session).get(principal.require_tenant())
    if tenant is None:
        raise NotFound("Practice not found.")
    return TenantRead.model_validate(tenant)


@router.patch("", summary="Update your practice's settings")
async def update_tenant(
    body: TenantSettingsUpdate, principal: SettingsManager, session: SessionDep
) -> TenantRead:
    tenant = await TenantRepository(session).get(principal.require_tenant())
    if tenant is None:
        raise NotFound("Practice not found.")
    return TenantRead.model_validate(await update_settings(session, tenant, body, principal.actor))


@router.get(
    "/practice",
    summary="What a receptionist or bot needs: name, time zone, hours, professionals, fields",
)
async def read_practice(principal: PracticeReader, session: SessionDep) -> PracticeProfile:
    return await practice_profile(session, principal.require_tenant())


@router.get(
    "/professionals",
    summary="Who appointments are booked with (the default when there is only one)",
)
async def list_professionals(principal: PracticeReader, session: SessionDep) -> ProfessionalList:
    return await professional_list(session)


@router.get("/members", summary="Members of your practice")
async def list_members(principal: MembersReader, session: SessionDep) -> MemberList:
    rows = await MemberService(session).list()
    return MemberList(items=[_member(membership, user) for membership, user in rows])


@router.patch("/members/{user_id}", summary="Change a member's role (never the last owner)")
async def change_member_role(
    user_id: uuid.UUID, body: MemberUpdate, principal: MembersManager, session: SessionDep
) -> MemberRead:
    membership = await MemberService(session).change_role(user_id, body.role, principal.actor)
    rows = await MemberService(session).list()
    return next(_member(m, u) for m, u in rows if m.id == membership.id)


@router.delete(
    "/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member (never the last owner)",
)
async def remove_member(user_id: uuid.UUID, principal: MembersManager, session: SessionDep) -> None:
    await MemberService(session).remove(user_id, principal.actor)


def _member(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,
        joined_at=membership.created_at,
    )

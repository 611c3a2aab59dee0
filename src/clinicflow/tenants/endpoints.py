"""/tenant: the caller's practice and its members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import Conflict, NotFound
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import Paging, page_of_list, sortable_name
from clinicflow.tenants.models import Membership
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.schemas import (
    MemberList,
    MemberRead,
    MemberUpdate,
    PracticeProfile,
    ProfessionalList,
    ProfessionalRead,
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

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/tenant", tags=["tenant"])
MembersReader = Annotated[Principal, Depends(require(Permission.MEMBERS_READ))]
MembersManager = Annotated[Principal, Depends(require(Permission.MEMBERS_MANAGE))]
SettingsManager = Annotated[Principal, Depends(require(Permission.SETTINGS_MANAGE))]
SettingsReader = Annotated[Principal, Depends(require(Permission.SETTINGS_READ))]
PracticeReader = Annotated[Principal, Depends(require(Permission.PRACTICE_READ))]


@router.get("", summary="Get your practice and its settings")
async def read_tenant(principal: SettingsReader, session: SessionDep) -> TenantRead:
    """Owner or assistant. The practice the request acts in: name, time zone, read-only flag,
    plan and settings (working hours, appointment length, reminder lead time, session fee,
    custom patient field definitions)."""
    tenant = await TenantRepository(session).get(principal.require_tenant())
    if tenant is None:
        raise NotFound("Practice not found.")
    return TenantRead.model_validate(tenant)


@router.patch("", summary="Update your practice's settings")
async def update_tenant(
    body: TenantSettingsUpdate, principal: SettingsManager, session: SessionDep
) -> TenantRead:
    """Owner only. Partial: only the settings sent change; `session_fee` may be cleared with
    null. Working hours are validated per weekday (HH:MM, no overlapping intervals), the time
    zone must be an IANA name. 423 when read-only. Returns the practice; audited as
    tenant.settings_changed."""
    tenant = await TenantRepository(session).get(principal.require_tenant())
    if tenant is None:
        raise NotFound("Practice not found.")
    return TenantRead.model_validate(await update_settings(session, tenant, body, principal.actor))


@router.get(
    "/practice",
    summary="Get what is needed to book in your practice",
)
async def read_practice(principal: PracticeReader, session: SessionDep) -> PracticeProfile:
    """Any member, or an API key with `practice:read`. Name, time zone, working hours, default
    appointment length, the professionals (and the default one) and the custom patient field
    definitions: what a receptionist or a bot needs to book, without the other settings."""
    return await practice_profile(session, principal.require_tenant())


@router.get(
    "/professionals",
    summary="List the professionals appointments are booked with",
)
async def list_professionals(
    principal: PracticeReader, session: SessionDep, page: Paging
) -> ProfessionalList:
    """Any member, or an API key with `practice:read`. The owners, by name, whose id is the
    `professional_id` of a booking; `default_professional_id` is used when a booking leaves it
    out and the practice has only one. `limit` at a time, follow `next_cursor`."""
    staff = await professional_list(session)
    shown, next_cursor = page_of_list(staff.items, page, _professional_by_name, fields=2)
    return staff.model_copy(update={"items": shown, "next_cursor": next_cursor})


def _professional_by_name(professional: ProfessionalRead) -> tuple[str, str]:
    return sortable_name(professional.full_name), str(professional.id)


@router.get("/members", summary="List your practice's members")
async def list_members(principal: MembersReader, session: SessionDep, page: Paging) -> MemberList:
    """Owner or assistant. The members, by name, with e-mail, role and join date. `limit` at
    a time, follow `next_cursor`."""
    rows, next_cursor = page_of_list(await MemberService(session).list(), page, _by_name, fields=2)
    return MemberList(
        items=[_member(membership, user) for membership, user in rows], next_cursor=next_cursor
    )


def _by_name(row: tuple[Membership, User]) -> tuple[str, str]:
    return sortable_name(row[1].full_name), str(row[1].id)


@router.patch("/members/{user_id}", summary="Change a member's role", responses=problems(Conflict))
async def change_member_role(
    user_id: uuid.UUID, body: MemberUpdate, principal: MembersManager, session: SessionDep
) -> MemberRead:
    """Owner only. Sets the member's role (owner, assistant, viewer). 409 when it would demote
    the last owner; 404 for a user who is not a member. A demoted owner's API keys are
    suspended until confirmed. 423 when read-only. Returns the member; audited as
    member.role_changed."""
    membership = await MemberService(session).change_role(user_id, body.role, principal.actor)
    rows = await MemberService(session).list()
    return next(_member(m, u) for m, u in rows if m.id == membership.id)


@router.delete(
    "/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member from your practice",
    responses=problems(Conflict),
)
async def remove_member(user_id: uuid.UUID, principal: MembersManager, session: SessionDep) -> None:
    """Owner only. Ends the user's membership (the account itself remains). 409 for the last
    owner; 404 for a user who is not a member. API keys the user created are suspended. 423
    when read-only. Answers 204; audited as member.removed."""
    await MemberService(session).remove(user_id, principal.actor)


def _member(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,
        joined_at=membership.created_at,
    )

"""Platform admin: /tenants and /plans (SPEC §3). The owner of a new practice is invited."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.pagination import (
    PageParams,
    Paging,
    cursor_fields,
    encode_cursor,
    page_of_list,
    page_params,
    sortable_name,
)
from clinicflow.invitations.service import InvitationService
from clinicflow.tenants.admin_schemas import (
    PlanAssign,
    PlanBody,
    PlanList,
    PlanPatch,
    PlanRead,
    ReadOnlyUpdate,
    TenantAdminUpdate,
    TenantCreate,
    TenantCreated,
    TenantPage,
    TenantSummary,
)
from clinicflow.tenants.admin_service import PlatformService
from clinicflow.tenants.models import Plan, Role, Tenant

router = APIRouter(route_class=UnitOfWorkRoute, tags=["platform"])
Admin = Annotated[Principal, Depends(require(Permission.PLATFORM_TENANTS))]


async def _service(admin: Admin, session: SessionDep) -> PlatformService:
    return PlatformService(session, admin.actor)


Service = Annotated[PlatformService, Depends(_service)]


def _summary(row: tuple[Tenant, int]) -> TenantSummary:
    tenant, member_count = row
    return TenantSummary.model_validate(tenant).model_copy(update={"member_count": member_count})


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    summary="Create a practice",
)
async def create_tenant(
    body: TenantCreate, admin: Admin, service: Service, request: Request, session: SessionDep
) -> TenantCreated:
    """Platform admin only. Creates the practice (optionally on a plan, in a time zone) and
    invites `owner_email` as its owner by e-mail; the owner sets a password when accepting.
    Answers 201 with the practice and the invitation id; audited as tenant.created."""
    tenant = await service.create_tenant(body.name, body.timezone, body.plan_id)
    state = request.app.state
    invitations = InvitationService(session, state.settings, state.password_hasher, state.outbox)
    invitation = await invitations.invite(tenant, body.owner_email, Role.OWNER, admin.actor)
    summary = _summary(await service.with_member_count(tenant)).model_dump()
    return TenantCreated(**summary, owner_invitation_id=invitation.id)


@router.get("/tenants", summary="List practices")
async def list_tenants(
    admin: Admin,
    service: Service,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[str | None, Query(max_length=200, description="Matches the name.")] = None,
) -> TenantPage:
    """Platform admin only. Every practice with its member count, plan and read-only flag; `q`
    searches the name. Cursor-paginated (`limit`, `cursor`; follow `next_cursor`)."""
    after = (cursor_fields(page.cursor, uuid.UUID) or (None,))[0]
    rows, more = await service.page(q, page.limit, after)
    items = [_summary(row) for row in rows]
    return TenantPage(items=items, next_cursor=encode_cursor([str(items[-1].id)]) if more else None)


@router.get("/tenants/{tenant_id}", summary="Get a practice")
async def read_tenant(tenant_id: uuid.UUID, admin: Admin, service: Service) -> TenantSummary:
    """Platform admin only. One practice with member count, plan and read-only flag (never its
    clinical data). 404 for an unknown id."""
    return _summary(await service.with_member_count(await service.tenant(tenant_id)))


@router.patch("/tenants/{tenant_id}", summary="Rename a practice or change its time zone")
async def update_tenant(
    tenant_id: uuid.UUID, body: TenantAdminUpdate, admin: Admin, service: Service
) -> TenantSummary:
    """Platform admin only. Partial: `name`, `timezone` (IANA name). Returns the practice;
    audited as tenant.updated."""
    return _summary(await service.with_member_count(await service.update(tenant_id, body)))


@router.delete(
    "/tenants/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a practice"
)
async def delete_tenant(tenant_id: uuid.UUID, admin: Admin, service: Service) -> None:
    """Platform admin only. Soft delete: the practice and its data are kept but it disappears
    from the platform and its members and API keys stop working in it. Answers 204; audited as
    tenant.deleted."""
    await service.delete(tenant_id)


@router.put("/tenants/{tenant_id}/read-only", summary="Switch a practice's read-only mode")
async def set_read_only(
    tenant_id: uuid.UUID, body: ReadOnlyUpdate, admin: Admin, service: Service
) -> TenantSummary:
    """Platform admin only (e.g. an unpaid plan). With `enabled: true` every write in the
    practice answers 423 Locked while reads keep working; `false` lifts it. Returns the
    practice; audited as tenant.read_only_changed."""
    return _summary(
        await service.with_member_count(await service.set_read_only(tenant_id, body.enabled))
    )


@router.put("/tenants/{tenant_id}/plan", summary="Put a practice on a plan")
async def set_plan(
    tenant_id: uuid.UUID, body: PlanAssign, admin: Admin, service: Service
) -> TenantSummary:
    """Platform admin only. Sets the practice's plan (null: no plan, no limits). The plan's
    limits (patients, members, API access) apply from the next request and are answered with
    402 naming the limit. 404 for an unknown plan. Audited as tenant.plan_changed."""
    return _summary(
        await service.with_member_count(await service.set_plan(tenant_id, body.plan_id))
    )


@router.get("/plans", summary="List plans")
async def list_plans(admin: Admin, service: Service, page: Paging) -> PlanList:
    """Platform admin only. Every plan, by name, with its limits (max patients, max members,
    API access; null means unlimited). `limit` at a time, follow `next_cursor`."""
    plans, next_cursor = page_of_list(await service.platform.plans(), page, _by_name, fields=2)
    return PlanList(
        items=[PlanRead.model_validate(plan) for plan in plans], next_cursor=next_cursor
    )


def _by_name(plan: Plan) -> tuple[str, str]:
    return sortable_name(plan.name), str(plan.id)


@router.post("/plans", status_code=status.HTTP_201_CREATED, summary="Create a plan")
async def create_plan(body: PlanBody, admin: Admin, service: Service) -> PlanRead:
    """Platform admin only. A named set of limits; null limits mean unlimited. 409 when the name
    exists. Answers 201 with the plan; audited as plan.created."""
    return PlanRead.model_validate(await service.create_plan(body))


@router.patch("/plans/{plan_id}", summary="Change a plan's limits")
async def update_plan(
    plan_id: uuid.UUID, body: PlanPatch, admin: Admin, service: Service
) -> PlanRead:
    """Platform admin only. Partial: name, max_patients, max_members (null clears a limit),
    api_access. Applies to every practice on the plan. 404 for an unknown plan. Audited as
    plan.updated (values before and after)."""
    return PlanRead.model_validate(await service.update_plan(plan_id, body))

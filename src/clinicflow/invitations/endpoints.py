"""/invitations: invite (owner: own practice; platform admin: any), look up, accept, revoke."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from starlette.convertors import Convertor, register_url_convertor

from clinicflow.auth.deps import Principal, get_optional_principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import Conflict, NotFound, PlanLimitExceeded, TenantReadOnly
from clinicflow.core.openapi import WORKS_IN_READ_ONLY, problems
from clinicflow.core.pagination import Paging, page_of_list, sortable_instant
from clinicflow.core.ratelimit import limit_public
from clinicflow.invitations.models import Invitation
from clinicflow.invitations.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationList,
    InvitationPublic,
    InvitationRead,
)
from clinicflow.invitations.service import TOKEN_PREFIX, InvitationService

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/invitations", tags=["invitations"])
Inviter = Annotated[
    Principal, Depends(require(Permission.MEMBERS_MANAGE, Permission.PLATFORM_USERS))
]
# Withdrawing a pending link is a security action: it works in a read-only practice too.
Revoker = Annotated[
    Principal,
    Depends(require(Permission.MEMBERS_MANAGE, Permission.PLATFORM_USERS, revokes_credential=True)),
]
TenantQuery = Annotated[uuid.UUID | None, Query(description="Platform admin: the practice")]


async def invitation_service(request: Request, session: SessionDep) -> InvitationService:
    state = request.app.state
    return InvitationService(session, state.settings, state.password_hasher, state.outbox)


Service = Annotated[InvitationService, Depends(invitation_service)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Invite someone to a practice by e-mail",
    dependencies=[Depends(limit_public("public_links"))],
    responses=problems(Conflict, PlanLimitExceeded),
)
async def create_invitation(
    body: InvitationCreate, principal: Inviter, service: Service
) -> InvitationRead:
    """Owner (own practice; `tenant_id` omitted) or platform admin (`tenant_id` required).
    E-mails a single-use link valid for 7 days. A platform admin may only invite the owner of a
    practice that has no owner and holds no patient or financial entry (403 otherwise: the
    operator never reaches clinical data, not even through someone they invite). 409 when the
    person is already a member; 402 when the plan's member limit is reached; 423 when the
    practice is read-only (for the platform admin too). Answers 201; audited as
    invitation.created."""
    tenant = await service.target_tenant(principal, body.tenant_id)
    await service.check_platform_invitation(principal, tenant, body.role)
    invitation = await service.invite(tenant, body.email, body.role, principal.actor)
    return InvitationRead.model_validate(invitation)


@router.get("", summary="List pending invitations")
async def list_invitations(
    principal: Inviter, service: Service, page: Paging, tenant_id: TenantQuery = None
) -> InvitationList:
    """Owner (own practice) or platform admin (`tenant_id` required). Invitations not yet
    accepted, revoked or expired, oldest first; `limit` at a time, follow `next_cursor`."""
    tenant = await service.target_tenant(principal, tenant_id)
    pending, next_cursor = page_of_list(
        await service.list_pending(tenant), page, _by_creation, fields=2
    )
    return InvitationList(
        items=[InvitationRead.model_validate(i) for i in pending], next_cursor=next_cursor
    )


def _by_creation(invitation: Invitation) -> tuple[str, str]:
    return sortable_instant(invitation.created_at), str(invitation.id)


@router.post(
    "/accept",
    summary="Accept an invitation",
    dependencies=[Depends(limit_public("public_links"))],
    responses=problems(NotFound, PlanLimitExceeded, TenantReadOnly),
)
async def accept_invitation(
    body: InvitationAccept,
    service: Service,
    caller: Annotated[Principal | None, Depends(get_optional_principal)],
) -> InvitationAccepted:
    """Public (the token is the credential). Joins the invited e-mail's account to the practice
    with the invited role. A new account needs `password` and `full_name`; an existing account
    must be logged in as itself (bearer token) or the answer is 409. 402 when the plan's
    member limit is reached; 404 for an invalid, used or expired token; 423 while the practice
    is in read-only mode (the invitation stays pending). Audited as invitation.accepted."""
    accepted = await service.accept(body.token, body.password, body.full_name, caller)
    return InvitationAccepted(
        user_id=accepted.user.id,
        tenant_id=accepted.invitation.tenant_id,
        role=accepted.invitation.role,
    )


class _InvitationToken(Convertor[str]):
    """Only `cfi_…` tokens reach the public route, so `/invitations/accept` and
    `/invitations/{invitation_id}` never match it too."""

    regex = f"{TOKEN_PREFIX}[A-Za-z0-9_-]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("invitation_token", _InvitationToken())
TokenPath = Annotated[str, Path(pattern=f"^{TOKEN_PREFIX}[A-Za-z0-9_-]+$", max_length=200)]


@router.get(
    "/{token:invitation_token}",
    summary="Look up an invitation by its token",
    dependencies=[Depends(limit_public("public_links"))],
)
async def read_invitation(token: TokenPath, service: Service) -> InvitationPublic:
    """Public (the token is the credential). The practice name, role, e-mail and expiry of a live
    invitation, to show before accepting. 404 for an invalid, used, revoked or expired token.
    Rate limited per IP."""
    invitation, tenant = await service.details(token)
    return InvitationPublic(
        tenant_name=tenant.name,
        role=invitation.role,
        email=invitation.email,
        expires_at=invitation.expires_at,
    )


@router.delete(
    "/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an invitation",
    openapi_extra=WORKS_IN_READ_ONLY,
)
async def revoke_invitation(
    invitation_id: uuid.UUID, principal: Revoker, service: Service, tenant_id: TenantQuery = None
) -> None:
    """Owner (own practice) or platform admin (`tenant_id` required). The link stops working. 404
    for an id that is not a pending invitation of the practice. Works in read-only mode too
    (withdrawing a link is a security action). Answers 204; audited as invitation.revoked."""
    tenant = await service.target_tenant(principal, tenant_id)
    await service.revoke(tenant, invitation_id, principal.actor)

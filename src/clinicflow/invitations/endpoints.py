"""/invitations: invite (owner: own practice; platform admin: any), look up, accept, revoke."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from starlette.convertors import Convertor, register_url_convertor

from clinicflow.auth.deps import Principal, get_optional_principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.core.ratelimit import limit_public
from clinicflow.invitations.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationList,
    InvitationPublic,
    InvitationRead,
)
from clinicflow.invitations.service import TOKEN_PREFIX, InvitationService

router = APIRouter(prefix="/invitations", tags=["invitations"])
Inviter = Annotated[
    Principal, Depends(require(Permission.MEMBERS_MANAGE, Permission.PLATFORM_USERS))
]
TenantQuery = Annotated[uuid.UUID | None, Query(description="Platform admin: the practice")]


def invitation_service(request: Request, session: SessionDep) -> InvitationService:
    state = request.app.state
    return InvitationService(session, state.settings, state.password_hasher, state.outbox)


Service = Annotated[InvitationService, Depends(invitation_service)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Invite someone by e-mail",
    dependencies=[Depends(limit_public("public_links"))],
)
async def create_invitation(
    body: InvitationCreate, principal: Inviter, service: Service
) -> InvitationRead:
    tenant = await service.target_tenant(principal, body.tenant_id)
    await service.check_platform_invitation(principal, tenant, body.role, body.break_glass_reason)
    invitation = await service.invite(tenant, body.email, body.role, principal.actor)
    return InvitationRead.model_validate(invitation)


@router.get("", summary="Pending invitations of a practice")
async def list_invitations(
    principal: Inviter, service: Service, tenant_id: TenantQuery = None
) -> InvitationList:
    tenant = await service.target_tenant(principal, tenant_id)
    pending = await service.list_pending(tenant)
    return InvitationList(items=[InvitationRead.model_validate(i) for i in pending])


@router.post(
    "/accept",
    summary="Accept an invitation (creates the account if needed)",
    dependencies=[Depends(limit_public("public_links"))],
)
async def accept_invitation(
    body: InvitationAccept,
    service: Service,
    caller: Annotated[Principal | None, Depends(get_optional_principal)],
) -> InvitationAccepted:
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
    summary="Public details of an invitation, from its token",
    dependencies=[Depends(limit_public("public_links"))],
)
async def read_invitation(token: TokenPath, service: Service) -> InvitationPublic:
    invitation, tenant = await service.details(token)
    return InvitationPublic(
        tenant_name=tenant.name,
        role=invitation.role,
        email=invitation.email,
        expires_at=invitation.expires_at,
    )


@router.delete(
    "/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke an invitation"
)
async def revoke_invitation(
    invitation_id: uuid.UUID, principal: Inviter, service: Service, tenant_id: TenantQuery = None
) -> None:
    tenant = await service.target_tenant(principal, tenant_id)
    await service.revoke(tenant, invitation_id, principal.actor)

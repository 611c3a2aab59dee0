"""/api-keys: the owner issues scoped keys for chatbots and n8n agents (sent as X-API-Key)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from clinicflow.apikeys.models import ApiKey
from clinicflow.apikeys.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyRead,
    ApiKeyRotate,
)
from clinicflow.apikeys.service import ApiKeyService, IssuedKey
from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import Conflict, NotFound, PlanLimitExceeded
from clinicflow.core.openapi import WORKS_IN_READ_ONLY, problems
from clinicflow.core.pagination import Paging, page_of_list, sortable_instant

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api-keys", tags=["api keys"])
KeyManager = Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE))]
KeyIssuer = Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE, verified_email=True))]
KeyRevoker = Annotated[
    Principal, Depends(require(Permission.API_KEYS_MANAGE, revokes_credential=True))
]


def _created(issued: IssuedKey) -> ApiKeyCreated:
    return ApiKeyCreated.model_validate(
        {**ApiKeyRead.model_validate(issued.row).model_dump(), "key": issued.secret}
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key",
    responses=problems(PlanLimitExceeded),
)
async def create_api_key(
    body: ApiKeyCreate, principal: KeyIssuer, session: SessionDep
) -> ApiKeyCreated:
    """Owner only, with a verified e-mail. A key for a chatbot or n8n, sent as `X-API-Key`,
    limited to its `scopes` and optionally expiring. The secret (`key`) is in this answer
    only; store it now. 402 when the plan has no API access; 423 when read-only. Answers 201;
    audited as api_key.created."""
    issued = await ApiKeyService(session).create(
        principal.require_tenant(), body.name, body.scopes, body.expires_at, principal.actor
    )
    return _created(issued)


@router.get("", summary="List the practice's API keys")
async def list_api_keys(principal: KeyManager, session: SessionDep, page: Paging) -> ApiKeyList:
    """Owner only. Active keys, newest first, redacted: name, prefix, scopes, expiry, last use
    and whether a key is suspended. Secrets are never shown again. `limit` at a time, follow
    `next_cursor`."""
    keys, next_cursor = page_of_list(
        await ApiKeyService(session).list_active(), page, _by_creation, fields=2, descending=True
    )
    return ApiKeyList(
        items=[ApiKeyRead.model_validate(key) for key in keys], next_cursor=next_cursor
    )


def _by_creation(key: ApiKey) -> tuple[str, str]:
    return sortable_instant(key.created_at), str(key.id)


@router.post(
    "/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    summary="Rotate an API key's secret",
    responses=problems(NotFound, Conflict),
)
async def rotate_api_key(
    key_id: uuid.UUID, body: ApiKeyRotate, principal: KeyManager, session: SessionDep
) -> ApiKeyCreated:
    """Owner only. Issues a new secret for the key (shown once in this answer); the old secret
    keeps working for `grace_seconds` (0: stops now). A key is rotated once: 409 for a key
    already rotated (in its grace period; rotate its successor); 404 for an unknown, revoked
    or expired key; 423 when read-only. Answers 201; audited as api_key.rotated."""
    return _created(
        await ApiKeyService(session).rotate(key_id, body.grace_seconds, principal.actor)
    )


@router.post(
    "/{key_id}/confirm",
    summary="Reactivate a suspended API key",
    responses=problems(NotFound),
)
async def confirm_api_key(
    key_id: uuid.UUID, principal: KeyManager, session: SessionDep
) -> ApiKeyRead:
    """Owner only. A key whose creator's password was reset, or who was demoted or removed, is
    suspended (401 at use) until an owner confirms it here. Returns the key; audited as
    api_key.confirmed. 404 for an unknown key."""
    return ApiKeyRead.model_validate(await ApiKeyService(session).confirm(key_id, principal.actor))


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    openapi_extra=WORKS_IN_READ_ONLY,
)
async def revoke_api_key(key_id: uuid.UUID, principal: KeyRevoker, session: SessionDep) -> None:
    """Owner only. The key stops working at once. 404 for an unknown key. Works in read-only
    mode too (revoking a leaked key is a security action, like logging out). Answers 204;
    audited as api_key.revoked."""
    await ApiKeyService(session).revoke(key_id, principal.actor)

"""/api-keys: the owner issues scoped keys for chatbots and n8n agents (sent as X-API-Key)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

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
from clinicflow.core.database import SessionDep
from clinicflow.core.errors import NotFound
from clinicflow.core.openapi import problems

router = APIRouter(prefix="/api-keys", tags=["api keys"])
KeyManager = Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE))]
KeyIssuer = Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE, verified_email=True))]


def _created(issued: IssuedKey) -> ApiKeyCreated:
    return ApiKeyCreated.model_validate(
        {**ApiKeyRead.model_validate(issued.row).model_dump(), "key": issued.secret}
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Issue a key (secret shown once)")
async def create_api_key(
    body: ApiKeyCreate, principal: KeyIssuer, session: SessionDep
) -> ApiKeyCreated:
    issued = await ApiKeyService(session).create(
        principal.require_tenant(), body.name, body.scopes, body.expires_at, principal.actor
    )
    return _created(issued)


@router.get("", summary="The practice's keys (redacted)")
async def list_api_keys(principal: KeyManager, session: SessionDep) -> ApiKeyList:
    return ApiKeyList(
        items=[ApiKeyRead.model_validate(key) for key in await ApiKeyService(session).list_active()]
    )


@router.post(
    "/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    summary="New secret; the old one works for a grace period you choose (0 = now)",
)
async def rotate_api_key(
    key_id: uuid.UUID, body: ApiKeyRotate, principal: KeyManager, session: SessionDep
) -> ApiKeyCreated:
    return _created(
        await ApiKeyService(session).rotate(key_id, body.grace_seconds, principal.actor)
    )


@router.post(
    "/{key_id}/confirm",
    summary="Confirm a key suspended by a password reset, so it works again",
    responses=problems(NotFound),
)
async def confirm_api_key(
    key_id: uuid.UUID, principal: KeyManager, session: SessionDep
) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await ApiKeyService(session).confirm(key_id, principal.actor))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a key")
async def revoke_api_key(key_id: uuid.UUID, principal: KeyManager, session: SessionDep) -> None:
    await ApiKeyService(session).revoke(key_id, principal.actor)

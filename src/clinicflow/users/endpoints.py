"""/users: your own account, and account management for the platform admin."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from clinicflow.auth.deps import CurrentPrincipal, Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.core.pagination import Page, PageParams, cursor_fields, encode_cursor, page_params
from clinicflow.core.ratelimit import limit_public
from clinicflow.users.schemas import (
    ChangePasswordRequest,
    PracticeMembershipList,
    UserCreate,
    UserRead,
    UserUpdate,
    UserUpdateMe,
)
from clinicflow.users.service import UserService, create_user, practices_of

router = APIRouter(prefix="/users", tags=["users"])
PlatformAdmin = Annotated[Principal, Depends(require(Permission.PLATFORM_USERS))]


def user_service(request: Request, session: SessionDep) -> UserService:
    return UserService(session, request.app.state.password_hasher)


UserServiceDep = Annotated[UserService, Depends(user_service)]


@router.get("/me", summary="Your account")
async def read_me(principal: CurrentPrincipal, service: UserServiceDep) -> UserRead:
    return UserRead.model_validate(await service.get(principal.require_user()))


@router.get("/me/practices", summary="The practices you belong to, with your role in each")
async def my_practices(
    principal: CurrentPrincipal, service: UserServiceDep, session: SessionDep
) -> PracticeMembershipList:
    user = await service.get(principal.require_user())
    return PracticeMembershipList(items=await practices_of(session, user))


# Usernames are unique, so a taken one must be refused, which tells that it exists: a tight
# per-IP limit keeps that from becoming a way to list usernames.
@router.put(
    "/me",
    summary="Update your name or username",
    dependencies=[Depends(limit_public("profile"))],
)
async def update_me(
    body: UserUpdateMe, principal: CurrentPrincipal, service: UserServiceDep
) -> UserRead:
    return UserRead.model_validate(await service.update_me(principal.require_user(), body))


@router.post(
    "/me/change-password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your password (ends your other sessions)",
)
async def change_password(
    body: ChangePasswordRequest, principal: CurrentPrincipal, service: UserServiceDep
) -> None:
    await service.change_password(
        principal.require_user(),
        body.current_password,
        body.new_password,
        principal.require_session(),
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an account (platform admin)")
async def create(
    body: UserCreate, admin: PlatformAdmin, request: Request, session: SessionDep
) -> UserRead:
    user = await create_user(
        session, request.app.state.password_hasher, email=body.email, password=body.password,
        full_name=body.full_name, is_platform_admin=body.is_platform_admin,
    )  # fmt: skip
    return UserRead.model_validate(user)


@router.get("", summary="List accounts (platform admin)")
async def list_users(
    admin: PlatformAdmin,
    service: UserServiceDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[UserRead]:
    after = (cursor_fields(page.cursor, uuid.UUID) or (None,))[0]
    users, more = await service.list_page(page.limit, after)
    return Page[UserRead](
        items=[UserRead.model_validate(user) for user in users],
        next_cursor=encode_cursor([str(users[-1].id)]) if more else None,
    )


@router.get("/{user_id}", summary="One account (platform admin)")
async def read_user(user_id: uuid.UUID, admin: PlatformAdmin, service: UserServiceDep) -> UserRead:
    return UserRead.model_validate(await service.get(user_id))


@router.put("/{user_id}", summary="Update an account (platform admin)")
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, admin: PlatformAdmin, service: UserServiceDep
) -> UserRead:
    return UserRead.model_validate(await service.admin_update(user_id, body, admin.actor))


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Deactivate an account and end its sessions (platform admin)",
)
async def delete_user(user_id: uuid.UUID, admin: PlatformAdmin, service: UserServiceDep) -> None:
    await service.deactivate(user_id, admin.actor)


@router.post(
    "/{user_id}/unlock",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Lift a login lockout (platform admin)",
)
async def unlock_user(user_id: uuid.UUID, admin: PlatformAdmin, service: UserServiceDep) -> None:
    await service.unlock(user_id, admin.actor)

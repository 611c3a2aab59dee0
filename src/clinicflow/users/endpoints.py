"""/users: your own account, and account management for the platform admin."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from clinicflow.auth.deps import CurrentPrincipal, Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.pagination import (
    Page,
    PageParams,
    cursor_fields,
    encode_cursor,
    page_of_list,
    page_params,
    sortable_name,
)
from clinicflow.core.ratelimit import limit_public
from clinicflow.users.schemas import (
    ChangePasswordRequest,
    PracticeMembership,
    PracticeMembershipList,
    UserCreate,
    UserRead,
    UserUpdate,
    UserUpdateMe,
)
from clinicflow.users.service import UserService, create_account, practices_of

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/users", tags=["users"])
PlatformAdmin = Annotated[Principal, Depends(require(Permission.PLATFORM_USERS))]


async def user_service(request: Request, session: SessionDep) -> UserService:
    return UserService(session, request.app.state.password_hasher, request.app.state.settings)


UserServiceDep = Annotated[UserService, Depends(user_service)]


@router.get("/me", summary="Get your account")
async def read_me(principal: CurrentPrincipal, service: UserServiceDep) -> UserRead:
    """Logged-in user (bearer token; not an API key). The user's own account: e-mail, username,
    name, verification, lockout and last login times."""
    return UserRead.model_validate(await service.get(principal.require_user()))


@router.get("/me/practices", summary="List the practices you belong to")
async def my_practices(
    principal: CurrentPrincipal, service: UserServiceDep, session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> PracticeMembershipList:  # fmt: skip
    """Logged-in user (bearer token). Each practice the user is a member of, by name, with the
    role there and which one is the default; `limit` at a time, follow `next_cursor`. Send a
    practice's `tenant_id` as the X-Tenant-ID header to act in it; without the header requests
    act in the default practice."""
    user = await service.get(principal.require_user())
    practices, next_cursor = page_of_list(
        await practices_of(session, user), page, _by_name, fields=2
    )
    return PracticeMembershipList(items=practices, next_cursor=next_cursor)


def _by_name(practice: PracticeMembership) -> tuple[str, str]:
    return sortable_name(practice.name), str(practice.tenant_id)


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
    """Logged-in user (bearer token). Partial update of `full_name` and `username`; fields left
    out keep their value. 409 if the username is taken. Rate limited per IP (a taken username
    tells that it exists). Returns the updated account."""
    return UserRead.model_validate(await service.update_me(principal.require_user(), body))


@router.post(
    "/me/change-password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your password",
)
async def change_password(
    body: ChangePasswordRequest, principal: CurrentPrincipal, service: UserServiceDep
) -> None:
    """Logged-in user (bearer token). Needs the current password (403 when wrong); the new one
    must be 8 to 128 characters and not a common password (422). A wrong current password
    counts as a failed login (audited as auth.login_failed): at the lockout threshold the
    account is locked, and while it is, this answers 403 whatever the password. Revokes every
    other session of the user; this one keeps working. Answers 204; audited as
    user.password_changed."""
    await service.change_password(
        principal.require_user(),
        body.current_password,
        body.new_password,
        principal.require_session(),
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user account")
async def create(
    body: UserCreate, admin: PlatformAdmin, request: Request, session: SessionDep
) -> UserRead:
    """Platform admin only. Creates an account (optionally another platform admin) without a
    practice membership; members join practices through invitations. 409 if the e-mail has an
    account. Answers 201 with the account; audited as user.created (with is_platform_admin)."""
    user = await create_account(
        session, request.app.state.password_hasher, email=body.email, password=body.password,
        full_name=body.full_name, is_platform_admin=body.is_platform_admin, actor=admin.actor,
        via="api",
    )  # fmt: skip
    return UserRead.model_validate(user)


@router.get("", summary="List user accounts")
async def list_users(
    admin: PlatformAdmin,
    service: UserServiceDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[UserRead]:
    """Platform admin only. Every account on the platform, oldest first, cursor-paginated
    (`limit`, `cursor`; follow `next_cursor`)."""
    after = (cursor_fields(page.cursor, uuid.UUID) or (None,))[0]
    users, more = await service.list_page(page.limit, after)
    return Page[UserRead](
        items=[UserRead.model_validate(user) for user in users],
        next_cursor=encode_cursor([str(users[-1].id)]) if more else None,
    )


@router.get("/{user_id}", summary="Get a user account")
async def read_user(user_id: uuid.UUID, admin: PlatformAdmin, service: UserServiceDep) -> UserRead:
    """Platform admin only. One account by id, with its lockout and activity times. 404 for an
    unknown id."""
    return UserRead.model_validate(await service.get(user_id))


@router.put("/{user_id}", summary="Update a user account")
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, admin: PlatformAdmin, service: UserServiceDep
) -> UserRead:
    """Platform admin only. Partial update of `full_name` and `is_active`; deactivating ends the
    account's sessions. Audited as user.activated / user.deactivated. Returns the account."""
    return UserRead.model_validate(await service.admin_update(user_id, body, admin.actor))


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Deactivate a user account",
)
async def delete_user(user_id: uuid.UUID, admin: PlatformAdmin, service: UserServiceDep) -> None:
    """Platform admin only. Deactivates the account (it is kept, not erased) and revokes all its
    sessions; it can no longer log in. 409 for your own account. Answers 204; audited as
    user.deactivated."""
    await service.deactivate(user_id, admin.actor)


@router.post(
    "/{user_id}/unlock",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unlock a locked-out account",
)
async def unlock_user(user_id: uuid.UUID, admin: PlatformAdmin, service: UserServiceDep) -> None:
    """Platform admin only. Lifts a login lockout (after repeated failed logins) and resets the
    failure count. Answers 204; audited as user.unlocked."""
    await service.unlock(user_id, admin.actor)

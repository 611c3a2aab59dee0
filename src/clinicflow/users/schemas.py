"""Request and response bodies of /users."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool

from clinicflow.core.pagination import NEXT_CURSOR
from clinicflow.core.security import GivenPassword, NewPassword
from clinicflow.core.types import PatchBody

_USERNAME = r"^[a-zA-Z0-9._-]{3,64}$"


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="User id.")
    email: str = Field(description="Login e-mail address.")
    username: str | None = Field(description="Optional login name (letters, digits, . _ -).")
    full_name: str = Field(description="The user's name.")
    is_platform_admin: StrictBool = Field(description="True for the platform operator's accounts.")
    is_active: StrictBool = Field(description="False once deactivated: the account cannot log in.")
    email_verified_at: datetime | None = Field(
        description="When the e-mail address was confirmed; null if not yet.",
    )
    locked_until: datetime | None = Field(
        description="Login lockout end after repeated failures; null when not locked.",
    )
    last_login_at: datetime | None = Field(description="When the user last logged in.")
    created_at: datetime = Field(description="When the account was created.")


class UserUpdateMe(PatchBody):
    full_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Your new name.",
        examples=["Ana Souza"],
    )
    username: str | None = Field(
        default=None,
        pattern=_USERNAME,
        description="A login name: 3-64 letters, digits, dots, underscores or hyphens; unique.",
        examples=["ana.souza"],
    )


class ChangePasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: GivenPassword = Field(description="Your current password.")
    new_password: NewPassword = Field(examples=["violet-harbor-71-quietly"])


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(
        description="Login e-mail address; must not have an account yet.",
        examples=["ops@platform.example"],
    )
    password: NewPassword = Field(examples=["violet-harbor-71-quietly"])
    full_name: str = Field(
        min_length=1,
        max_length=200,
        description="The user's name.",
        examples=["Rui Lima"],
    )
    is_platform_admin: StrictBool = Field(
        default=False,
        description="Make the account a platform admin (default false).",
    )


class UserUpdate(PatchBody):
    full_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The user's name.",
        examples=["Rui Lima"],
    )
    is_active: StrictBool | None = Field(
        default=None,
        description="false deactivates the account and ends its sessions; true reactivates it.",
    )


class PracticeMembership(BaseModel):
    tenant_id: uuid.UUID = Field(description="Send it as X-Tenant-ID to act in this practice")
    name: str = Field(description="The practice's name.")
    role: str = Field(description="Your role in it: owner, assistant or viewer.")
    is_default: StrictBool = Field(description="Where a login lands without X-Tenant-ID")


class PracticeMembershipList(BaseModel):
    items: list[PracticeMembership] = Field(
        description="The practices you belong to, by name (a page of them)."
    )
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)

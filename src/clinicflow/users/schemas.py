"""Request and response bodies of /users."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from clinicflow.core.security import GivenPassword, NewPassword
from clinicflow.core.types import PatchBody

_USERNAME = r"^[a-zA-Z0-9._-]{3,64}$"


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    username: str | None
    full_name: str
    is_platform_admin: bool
    is_active: bool
    email_verified_at: datetime | None
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime


class UserUpdateMe(PatchBody):
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    username: str | None = Field(default=None, pattern=_USERNAME)


class ChangePasswordRequest(BaseModel):
    current_password: GivenPassword
    new_password: NewPassword


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: NewPassword
    full_name: str = Field(min_length=1, max_length=200)
    is_platform_admin: bool = False


class UserUpdate(PatchBody):
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    is_active: bool | None = None


class PracticeMembership(BaseModel):
    tenant_id: uuid.UUID = Field(description="Send it as X-Tenant-ID to act in this practice")
    name: str
    role: str
    is_default: bool = Field(description="Where a login lands without X-Tenant-ID")


class PracticeMembershipList(BaseModel):
    items: list[PracticeMembership]

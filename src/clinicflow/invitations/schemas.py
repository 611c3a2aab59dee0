"""Request and response bodies of /invitations."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from clinicflow.core.security import NewPassword
from clinicflow.tenants.models import Role


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Role
    tenant_id: uuid.UUID | None = Field(default=None, description="Platform admin only")
    break_glass_reason: str | None = Field(
        default=None,
        min_length=10,
        max_length=500,
        description="Platform admin only, for a practice that has an owner: why the operator "
        "must add a (non-owner) member without the owner. Audited; the owners are e-mailed.",
    )


class InvitationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime


class InvitationList(BaseModel):
    items: list[InvitationRead]
    next_cursor: str | None = None


class InvitationPublic(BaseModel):
    tenant_name: str
    role: Role
    email: str
    expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200)
    password: NewPassword | None = None
    full_name: str | None = Field(default=None, min_length=1, max_length=200)


class InvitationAccepted(BaseModel):
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role

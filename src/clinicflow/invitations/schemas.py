"""Request and response bodies of /invitations."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from clinicflow.core.pagination import NEXT_CURSOR
from clinicflow.core.security import NewPassword
from clinicflow.tenants.models import Role


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(
        description="Who is invited; the link is e-mailed there.", examples=["rui@clinic.example"]
    )
    role: Role = Field(description="The role they get on accepting.", examples=["assistant"])
    tenant_id: uuid.UUID | None = Field(
        default=None,
        description="Platform admin only (required then): the practice to invite into.",
    )


class InvitationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Invitation id.")
    tenant_id: uuid.UUID = Field(description="The practice.")
    email: str = Field(description="Who is invited.")
    role: Role = Field(description="The role they get.")
    created_at: datetime = Field(description="When it was sent.")
    expires_at: datetime = Field(description="When the link stops working (7 days after sending).")


class InvitationList(BaseModel):
    items: list[InvitationRead] = Field(
        description="Pending invitations, oldest first (a page of them)."
    )
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)


class InvitationPublic(BaseModel):
    tenant_name: str = Field(description="The practice's name.")
    role: Role = Field(description="The role on accepting.")
    email: str = Field(description="Who is invited.")
    expires_at: datetime = Field(description="When the link stops working.")


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1, max_length=200, description="The token from the invitation link."
    )
    password: NewPassword | None = Field(
        default=None,
        description="Needed to create a new account: 8 to 128 characters, not a common password.",
        examples=["violet-harbor-71-quietly"],
    )
    full_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Needed to create a new account: your name.",
        examples=["Rui Lima"],
    )


class InvitationAccepted(BaseModel):
    user_id: uuid.UUID = Field(description="The account that joined.")
    tenant_id: uuid.UUID = Field(
        description="The practice joined; log in and send it as X-Tenant-ID if you have several."
    )
    role: Role = Field(description="The role in it.")

"""Bodies of the platform admin's /tenants and /plans."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from clinicflow.core.types import PatchBody


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    owner_email: EmailStr
    owner_full_name: str = Field(min_length=1, max_length=200)
    plan_id: uuid.UUID | None = None
    timezone: str = "UTC"


class TenantAdminUpdate(PatchBody):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = None


class ReadOnlyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class PlanAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: uuid.UUID | None


class TenantSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    timezone: str
    read_only: bool
    plan_id: uuid.UUID | None
    created_at: datetime
    member_count: int = 0


class TenantPage(BaseModel):
    items: list[TenantSummary]
    next_cursor: str | None = None


class TenantCreated(TenantSummary):
    owner_invitation_id: uuid.UUID


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    max_patients: int | None = Field(default=None, ge=0, le=1_000_000_000)
    max_members: int | None = Field(default=None, ge=1, le=1_000_000)
    api_access: bool = True


class PlanPatch(PatchBody):
    clearable = frozenset({"max_members", "max_patients"})

    name: str | None = Field(default=None, min_length=1, max_length=100)
    max_patients: int | None = Field(default=None, ge=0, le=1_000_000_000)
    max_members: int | None = Field(default=None, ge=1, le=1_000_000)
    api_access: bool | None = None


class PlanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    max_patients: int | None
    max_members: int | None
    api_access: bool


class PlanList(BaseModel):
    items: list[PlanRead]
    next_cursor: str | None = None

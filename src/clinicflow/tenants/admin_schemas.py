"""Bodies of the platform admin's /tenants and /plans."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from clinicflow.core.pagination import NEXT_CURSOR
from clinicflow.core.types import PatchBody, TimeZoneName


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, description="The practice's name.", examples=["Clínica Souza"]
    )
    owner_email: EmailStr = Field(
        description="Who is invited as the practice's owner.", examples=["ana@clinic.example"]
    )
    owner_full_name: str = Field(
        min_length=1,
        max_length=200,
        description="The owner's name, for the invitation e-mail.",
        examples=["Ana Souza"],
    )
    plan_id: uuid.UUID | None = Field(
        default=None, description="The plan to put the practice on; null for none."
    )
    timezone: TimeZoneName = Field(
        default="UTC", description="IANA time zone (default UTC).", examples=["America/Sao_Paulo"]
    )


class TenantAdminUpdate(PatchBody):
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="New name.",
        examples=["Clínica Souza & Lima"],
    )
    timezone: TimeZoneName | None = Field(
        default=None, description="New IANA time zone.", examples=["America/Sao_Paulo"]
    )


class ReadOnlyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        description="true: every write answers 423; false: lift read-only mode.", examples=[True]
    )


class PlanAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: uuid.UUID | None = Field(
        description="The plan (GET /plans); null removes the practice from any plan.",
        examples=["0190f3c2-7a4e-7b1c-9d2e-3f4a5b6c7d8e"],
    )


class TenantSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Practice id.")
    name: str = Field(description="The practice's name.")
    timezone: str = Field(description="IANA time zone.")
    read_only: bool = Field(description="True while writes answer 423.")
    plan_id: uuid.UUID | None = Field(description="The plan; null for none.")
    created_at: datetime = Field(description="When the practice was created.")
    member_count: int = Field(default=0, description="How many members it has.")


class TenantPage(BaseModel):
    items: list[TenantSummary] = Field(description="This page's practices.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class TenantCreated(TenantSummary):
    owner_invitation_id: uuid.UUID = Field(description="The invitation e-mailed to the owner.")


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=100, description="Unique plan name.", examples=["Solo"]
    )
    max_patients: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000_000,
        description="Most patients a practice may have; null: unlimited.",
        examples=[500],
    )
    max_members: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Most members a practice may have; null: unlimited.",
        examples=[3],
    )
    api_access: bool = Field(
        default=True, description="Whether the practice's API keys work (default true)."
    )


class PlanPatch(PatchBody):
    clearable = frozenset({"max_members", "max_patients"})

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Unique plan name.",
        examples=["Solo plus"],
    )
    max_patients: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000_000,
        description="Most patients; null: unlimited.",
        examples=[1000],
    )
    max_members: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most members; null: unlimited.", examples=[5]
    )
    api_access: bool | None = Field(
        default=None, description="Whether the practice's API keys work."
    )


class PlanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Plan id.")
    name: str = Field(description="Plan name.")
    max_patients: int | None = Field(description="Most patients; null: unlimited.")
    max_members: int | None = Field(description="Most members; null: unlimited.")
    api_access: bool = Field(description="Whether API keys work on this plan.")


class PlanList(BaseModel):
    items: list[PlanRead] = Field(description="The plans, by name (a page of them).")
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)

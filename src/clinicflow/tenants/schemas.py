"""Request and response bodies of /tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clinicflow.patients.custom_fields import CustomFieldDefinition
from clinicflow.tenants.models import Role


class TenantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    timezone: str
    read_only: bool
    plan_id: uuid.UUID | None
    settings: dict[str, Any]
    created_at: datetime


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    joined_at: datetime


class MemberList(BaseModel):
    items: list[MemberRead]
    next_cursor: str | None = None


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class ProfessionalRead(BaseModel):
    id: uuid.UUID = Field(description="The professional_id to book with")
    full_name: str


class ProfessionalList(BaseModel):
    items: list[ProfessionalRead]
    default_professional_id: uuid.UUID | None = Field(
        description="Used when professional_id is left out: the only professional, if one"
    )
    next_cursor: str | None = None


class Interval(BaseModel):
    start: str = Field(description="HH:MM, local time")
    end: str = Field(description="HH:MM, local time; 24:00 for midnight")


class PracticeProfile(BaseModel):
    """What a receptionist or bot needs to act on the agenda (scope practice:read)."""

    id: uuid.UUID
    name: str
    timezone: str = Field(description="IANA time zone of working hours and availability")
    working_hours: dict[str, list[Interval]] = Field(description="mon..sun -> open intervals")
    default_appointment_minutes: int
    professionals: list[ProfessionalRead]
    default_professional_id: uuid.UUID | None
    custom_patient_fields: list[CustomFieldDefinition]

"""Request and response bodies of /tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from clinicflow.core.pagination import NEXT_CURSOR
from clinicflow.patients.custom_fields import CustomFieldDefinition
from clinicflow.tenants.models import Role


class TenantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Practice (tenant) id.")
    name: str = Field(description="The practice's name.")
    timezone: str = Field(
        description="IANA time zone of working hours, availability and summaries."
    )
    read_only: StrictBool = Field(
        description="True while the platform operator has the practice in read-only mode (writes "
        "answer 423)."
    )
    plan_id: uuid.UUID | None = Field(description="The plan whose limits apply; null for none.")
    settings: dict[str, Any] = Field(
        description="Working hours, appointment length, reminder lead time, session fee, "
        "currency, custom patient fields and calendar options."
    )
    created_at: datetime = Field(description="When the practice was created.")


class MemberRead(BaseModel):
    user_id: uuid.UUID = Field(description="The member's user id.")
    email: str = Field(description="The member's e-mail address.")
    full_name: str = Field(description="The member's name.")
    role: Role = Field(description="owner, assistant or viewer.")
    joined_at: datetime = Field(description="When the member joined the practice.")


class MemberList(BaseModel):
    items: list[MemberRead] = Field(description="The practice's members, by name (a page of them).")
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="The new role.", examples=["assistant"])


class ProfessionalRead(BaseModel):
    id: uuid.UUID = Field(description="The professional_id to book with")
    full_name: str = Field(description="The professional's name.")


class ProfessionalList(BaseModel):
    items: list[ProfessionalRead] = Field(description="The practice's professionals (its owners).")
    default_professional_id: uuid.UUID | None = Field(
        description="Used when professional_id is left out: the only professional, if one"
    )
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)


class Interval(BaseModel):
    start: str = Field(description="HH:MM, local time")
    end: str = Field(description="HH:MM, local time; 24:00 for midnight")


class PracticeProfile(BaseModel):
    """What a receptionist or bot needs to act on the agenda (scope practice:read)."""

    id: uuid.UUID = Field(description="Practice id.")
    name: str = Field(description="The practice's name.")
    timezone: str = Field(description="IANA time zone of working hours and availability")
    working_hours: dict[str, list[Interval]] = Field(description="mon..sun -> open intervals")
    default_appointment_minutes: int = Field(
        description="Length of an appointment booked without end or duration."
    )
    professionals: list[ProfessionalRead] = Field(description="Who appointments are booked with.")
    default_professional_id: uuid.UUID | None = Field(
        description="Used when professional_id is left out: the only professional, if there is one."
    )
    custom_patient_fields: list[CustomFieldDefinition] = Field(
        description="Definitions of the custom fields a patient's custom_fields may hold."
    )

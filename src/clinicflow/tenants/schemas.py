"""Request and response bodies of /tenant."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

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

"""Notification API shapes (separate from the ORM rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clinicflow.webhooks.schemas import EventType


class PatientEmailCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email"]
    patient_id: uuid.UUID
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)


class WebhookEventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["webhook"]
    event_type: EventType
    data: dict[str, Any] = Field(default_factory=dict)


NotificationCreate = Annotated[
    PatientEmailCreate | WebhookEventCreate, Field(discriminator="channel")
]


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: str
    kind: str
    recipient: str
    subject: str | None
    event_type: str | None
    webhook_id: uuid.UUID | None
    appointment_id: uuid.UUID | None
    patient_id: uuid.UUID | None
    status: str
    attempts: int
    last_error: str | None
    scheduled_for: datetime
    sent_at: datetime | None
    created_at: datetime


class NotificationList(BaseModel):
    items: list[NotificationRead]
    next_cursor: str | None = None


class NotificationsQueued(BaseModel):
    items: list[NotificationRead]

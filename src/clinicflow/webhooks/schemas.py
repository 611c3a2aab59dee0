"""Webhook API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal[
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "appointment.status_changed",
    "patient.created",
    "patient.updated",
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2048)
    events: list[EventType] = Field(min_length=1)
    secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="Generated when omitted."
    )


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Shown once; keep it to verify X-ClinicFlow-Signature.")


class WebhookList(BaseModel):
    items: list[WebhookRead]

"""Webhook API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clinicflow.webhooks.events import CustomEventType, SystemEventType

# What a subscription may list: a system event, one custom event by name, or every custom one.
SubscribedEvent = SystemEventType | Literal["custom.*"] | CustomEventType


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=8,
        max_length=2048,
        pattern=r"^https?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?([/?#][^\s\x00-\x1f\x7f]*)?$",
        description="Where signed POST deliveries go, e.g. an n8n Webhook trigger URL.",
        examples=["https://n8n.acme.com/webhook/clinicflow"],
    )
    events: list[SubscribedEvent] = Field(
        min_length=1,
        description="The event types to deliver: ClinicFlow's own events (appointment.created, "
        "appointment.updated, appointment.cancelled, appointment.status_changed, "
        "patient.created, patient.updated), sent only by ClinicFlow after the change; and the "
        "practice's manual events (POST /notifications, channel webhook), always named "
        "`custom.<name>`: list each by name, or `custom.*` for all of them.",
        examples=[["appointment.created", "appointment.cancelled", "custom.*"]],
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="HMAC-SHA256 signing secret (16-200 characters); generated when omitted.",
        examples=["whsec_0123456789abcdefghij"],
    )


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Webhook id.")
    url: str = Field(description="Where deliveries go.")
    events: list[str] = Field(description="The event types delivered.")
    created_at: datetime = Field(description="When it was created.")


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Shown once; keep it to verify X-ClinicFlow-Signature.")


class WebhookList(BaseModel):
    items: list[WebhookRead] = Field(description="The practice's active webhooks.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )

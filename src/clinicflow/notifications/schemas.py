"""Notification API shapes (separate from the ORM rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clinicflow.webhooks.schemas import EventType


class PatientEmailCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email"] = Field(
        description="`email`: an e-mail to a patient.", examples=["email"]
    )
    patient_id: uuid.UUID = Field(
        description="The patient; they must have an e-mail address.",
        examples=["0190f3c2-7a4e-7b1c-9d2e-3f4a5b6c7d8e"],
    )
    subject: str = Field(
        min_length=1,
        max_length=200,
        description="The e-mail's subject.",
        examples=["Your appointment"],
    )
    text: str = Field(
        min_length=1,
        max_length=20_000,
        description="The e-mail's plain-text body.",
        examples=["See you on Tuesday at 14:00."],
    )


class WebhookEventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["webhook"] = Field(
        description="`webhook`: an event to every webhook subscribed to it.", examples=["webhook"]
    )
    event_type: EventType = Field(
        description="The event type; delivered to the webhooks subscribed to it.",
        examples=["appointment.created"],
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The event's `data` object, passed on as given.",
        examples=[{"note": "test"}],
    )


NotificationCreate = Annotated[
    PatientEmailCreate | WebhookEventCreate, Field(discriminator="channel")
]


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Notification id.")
    channel: str = Field(description="email or webhook.")
    kind: str = Field(description="reminder, patient_email, webhook_event or webhook_ping.")
    recipient: str = Field(description="E-mail address or webhook URL.")
    subject: str | None = Field(description="The e-mail's subject.")
    event_type: str | None = Field(description="The webhook event type.")
    webhook_id: uuid.UUID | None = Field(description="The webhook delivered to.")
    appointment_id: uuid.UUID | None = Field(description="The appointment it is about.")
    patient_id: uuid.UUID | None = Field(description="The patient it is about.")
    status: str = Field(description="pending, sending, sent, dead (gave up) or cancelled.")
    attempts: int = Field(description="Delivery attempts so far.")
    last_error: str | None = Field(description="Why the last attempt failed.")
    scheduled_for: datetime = Field(description="When it is (or was) due to go out.")
    sent_at: datetime | None = Field(description="When it was delivered.")
    created_at: datetime = Field(description="When it was queued.")


class NotificationList(BaseModel):
    items: list[NotificationRead] = Field(description="This page's notifications, newest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class NotificationsQueued(BaseModel):
    items: list[NotificationRead] = Field(description="The notifications queued by this request.")

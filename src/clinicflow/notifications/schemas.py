"""Notification API shapes (separate from the ORM rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinicflow.webhooks.events import (
    CUSTOM_EVENT_PATTERN,
    CUSTOM_PREFIX,
    PING_EVENT_TYPE,
    SYSTEM_EVENT_TYPES,
    CustomEventType,
    is_custom,
)


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
    event_type: CustomEventType = Field(
        description="A manual event's type: `custom.<name>` (lowercase letters, digits, `_`, "
        "`-` and `.`; e.g. `custom.birthday_greeting`). ClinicFlow's own events "
        "(appointment.*, patient.*, webhook.ping) are sent only by ClinicFlow, after the change "
        "they describe, and are refused here (422), so a receiver can trust them. Delivered to "
        "the webhooks subscribed to this name or to `custom.*`.",
        examples=["custom.birthday_greeting"],
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The event's `data` object, passed on as given.",
        examples=[{"note": "test"}],
    )

    @field_validator("event_type", mode="before")
    @classmethod
    def _manual_events_are_custom(cls, value: object) -> object:
        """Say why, before the pattern's generic message: an assistant sending
        appointment.cancelled must learn that the name is the system's, not mistyped."""
        if isinstance(value, str) and not is_custom(value):
            known = value in SYSTEM_EVENT_TYPES or value == PING_EVENT_TYPE
            why = (
                f"{value} is one of ClinicFlow's own events, which only ClinicFlow sends"
                if known
                else "Not a manual event's name"
            )
            raise ValueError(
                f"{why}. Manual events are named {CUSTOM_PREFIX}<name> "
                f"(pattern {CUSTOM_EVENT_PATTERN}), e.g. custom.birthday_greeting."
            )
        return value


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

"""Response bodies of /audit-events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Event id.")
    seq: int = Field(description="Position in its chain; events are listed by it, newest first.")
    occurred_at: datetime = Field(description="When it happened.")
    action: str = Field(
        description="What happened, e.g. auth.login, record.read, appointment.overlap_allowed."
    )
    actor_user_id: uuid.UUID | None = Field(description="The user who acted.")
    actor_api_key_id: uuid.UUID | None = Field(description="Or the API key that acted.")
    subject_type: str | None = Field(description="The kind of thing acted on, e.g. patient.")
    subject_id: str | None = Field(description="Its id.")
    ip: str | None = Field(description="The client IP.")
    request_id: str | None = Field(description="The request's X-Request-ID.")
    details: dict[str, Any] = Field(description="Action-specific details.")
    hash: str = Field(
        description="SHA-256 over this event and the previous event's hash (tamper evidence)."
    )


class AuditEventPage(BaseModel):
    items: list[AuditEventRead] = Field(description="This page's events, newest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )

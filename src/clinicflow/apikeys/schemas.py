"""Request and response bodies of /api-keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from clinicflow.auth.permissions import API_KEY_SCOPES
from clinicflow.core.pagination import NEXT_CURSOR
from clinicflow.core.types import Instant

SCOPE_NAMES = sorted(scope.value for scope in API_KEY_SCOPES)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=100,
        description="What the key is for.",
        examples=["n8n receptionist"],
    )
    scopes: list[str] = Field(
        min_length=1,
        json_schema_extra={"items": {"type": "string", "enum": list[JsonValue](SCOPE_NAMES)}},
        description=f"What the key may do; any of: {', '.join(SCOPE_NAMES)}.",
        examples=[
            ["patients:read", "appointments:read", "appointments:write", "availability:read"]
        ],
    )
    expires_at: Instant | None = Field(
        default=None,
        description="When the key stops working (ISO 8601 with offset, in the future); null: "
        "never.",
        examples=["2027-12-31T23:59:59Z"],
    )

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = sorted(set(scopes) - set(SCOPE_NAMES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; allowed: {SCOPE_NAMES}")
        return sorted(set(scopes))


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=0,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the old secret keeps working, in seconds (0-604800); 0 stops it now.",
        examples=[3600],
    )


class ApiKeyRead(BaseModel):
    """Never the secret: only its recognisable prefix."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Key id.")
    name: str = Field(description="What the key is for.")
    prefix: str = Field(description="The secret's recognisable start, to tell keys apart.")
    scopes: list[str] = Field(description="What the key may do.")
    created_at: datetime = Field(description="When it was issued.")
    expires_at: datetime | None = Field(description="When it stops working; null: never.")
    last_used_at: datetime | None = Field(description="When it was last used.")
    suspended_at: datetime | None = Field(
        default=None,
        description="Set when its creator's password was reset: the key answers 401 until the "
        "owner confirms it (POST /api-keys/{id}/confirm).",
    )


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret. Shown once: store it now.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyRead] = Field(
        description="The practice's active keys, newest first (a page of them)."
    )
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)

"""Request and response bodies of /api-keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinicflow.auth.permissions import API_KEY_SCOPES
from clinicflow.core.types import Instant

SCOPE_NAMES = sorted(scope.value for scope in API_KEY_SCOPES)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, description=f"Any of: {', '.join(SCOPE_NAMES)}")
    expires_at: Instant | None = None

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
        default=0, ge=0, le=7 * 24 * 3600, description="How long the old secret keeps working"
    )


class ApiKeyRead(BaseModel):
    """Never the secret: only its recognisable prefix."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    suspended_at: datetime | None = Field(
        default=None,
        description="Set when its creator's password was reset: the key answers 401 until the "
        "owner confirms it (POST /api-keys/{id}/confirm).",
    )


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret. Shown once: store it now.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyRead]
    next_cursor: str | None = None

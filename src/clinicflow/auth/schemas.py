"""Request and response bodies of /auth."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from clinicflow.core.security import GivenPassword, NewPassword


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=320, description="E-mail or username")
    password: GivenPassword


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105  (OAuth2 token type, not a secret)
    expires_in: int


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool = False


class SessionList(BaseModel):
    items: list[SessionRead]
    next_cursor: str | None = None


class MeResponse(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    tenant_id: uuid.UUID | None
    role: str
    permissions: list[str]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: NewPassword
    full_name: str = Field(min_length=1, max_length=200)
    practice_name: str = Field(min_length=1, max_length=200)


class ForgotPasswordRequest(BaseModel):
    email: str = Field(min_length=1, max_length=320)


class ResetPasswordRequest(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    new_password: NewPassword


class VerifyEmailRequest(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class AcceptedResponse(BaseModel):
    detail: str

"""Request and response bodies of /auth."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool

from clinicflow.core.pagination import NEXT_CURSOR
from clinicflow.core.security import GivenPassword, NewPassword


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(
        min_length=1,
        max_length=320,
        description="The account's username or e-mail address.",
        examples=["ana@clinic.example"],
    )
    password: GivenPassword = Field(description="The account's password.")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(
        min_length=1,
        max_length=4096,
        description="The refresh token from the last login or refresh; it is spent by this call.",
    )


class TokenResponse(BaseModel):
    access_token: str = Field(description="JWT to send as `Authorization: Bearer <token>`.")
    refresh_token: str = Field(
        description="Opaque, single-use token for POST /auth/refresh; store it securely.",
    )
    # The OAuth2 token type, not a secret.
    token_type: str = Field(default="bearer", description="Always `bearer`.")
    expires_in: int = Field(description="Seconds until the access token expires.")


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Session id (for DELETE /auth/sessions/{id}).")
    user_agent: str | None = Field(description="The User-Agent the session logged in with.")
    ip: str | None = Field(description="The client IP the session logged in from.")
    created_at: datetime = Field(description="When the session logged in.")
    last_used_at: datetime = Field(description="When the session last refreshed its tokens.")
    expires_at: datetime = Field(description="When the session ends unless refreshed.")
    current: StrictBool = Field(
        default=False,
        description="True for the session of the token making this request.",
    )


class SessionList(BaseModel):
    items: list[SessionRead] = Field(
        description="The user's active sessions, newest first (a page of them)."
    )
    next_cursor: str | None = Field(
        default=None,
        description=NEXT_CURSOR,
    )


class MeResponse(BaseModel):
    user_id: uuid.UUID = Field(description="Your user id.")
    email: str = Field(description="Your e-mail address.")
    full_name: str = Field(description="Your name.")
    tenant_id: uuid.UUID | None = Field(
        description="The practice this request acts in (null for a platform admin).",
    )
    role: str = Field(description="Your role there: owner, assistant, viewer or platform_admin.")
    permissions: list[str] = Field(
        description="The permission names your role grants, e.g. patients:read.",
    )


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(
        description="Your e-mail address; it becomes your login and gets a verification link.",
        examples=["ana@clinic.example"],
    )
    password: NewPassword = Field(examples=["violet-harbor-71-quietly"])
    full_name: str = Field(
        min_length=1,
        max_length=200,
        description="Your name as patients and colleagues see it.",
        examples=["Ana Souza"],
    )
    practice_name: str = Field(
        min_length=1,
        max_length=200,
        description="The name of the practice created with you as owner.",
        examples=["Clínica Souza"],
    )


class ForgotPasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(
        min_length=1,
        max_length=320,
        description="The account's e-mail address.",
        examples=["ana@clinic.example"],
    )


class ResetPasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1,
        max_length=200,
        description="The token from the reset link in the e-mail.",
    )
    new_password: NewPassword = Field(examples=["violet-harbor-71-quietly"])


class VerifyEmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1,
        max_length=200,
        description="The token from the verification link in the e-mail.",
    )


class AcceptedResponse(BaseModel):
    detail: str = Field(description="What happens next, in words.")

"""/auth: login (JSON and OAuth2 form), refresh, logout, sessions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from clinicflow.auth.account_service import AccountService
from clinicflow.auth.deps import CurrentPrincipal
from clinicflow.auth.schemas import (
    AcceptedResponse,
    ForgotPasswordRequest,
    LoginRequest,
    MeResponse,
    RefreshRequest,
    RegisterRequest,
    ResetPasswordRequest,
    SessionList,
    SessionRead,
    TokenResponse,
    VerifyEmailRequest,
)
from clinicflow.auth.service import AuthService, TokenPair
from clinicflow.core.database import SessionDep
from clinicflow.core.ratelimit import RateLimiter, limit_public
from clinicflow.tenants.schemas import TenantRead
from clinicflow.users.repository import UserRepository
from clinicflow.users.schemas import UserRead

router = APIRouter(prefix="/auth", tags=["auth"])


def auth_service(request: Request, session: SessionDep) -> AuthService:
    return AuthService(session, request.app.state.settings, request.app.state.password_hasher)


AuthServiceDep = Annotated[AuthService, Depends(auth_service)]


def rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


LimiterDep = Annotated[RateLimiter, Depends(rate_limiter)]


class RegisterResponse(BaseModel):
    user: UserRead
    tenant: TenantRead


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post("/login", summary="Log in with username (or e-mail) and password")
async def login(
    body: LoginRequest, service: AuthServiceDep, limiter: LimiterDep, request: Request
) -> TokenResponse:
    await limiter.login(request, body.username)
    return _tokens(await service.login(body.username, body.password))


@router.post("/token", summary="OAuth2 password flow (Swagger's Authorize button)")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    service: AuthServiceDep,
    limiter: LimiterDep,
    request: Request,
) -> TokenResponse:
    await limiter.login(request, form.username)
    return _tokens(await service.login(form.username, form.password))


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new pair (rotation)",
    dependencies=[Depends(limit_public("token_refresh"))],
)
async def refresh(body: RefreshRequest, service: AuthServiceDep) -> TokenResponse:
    return _tokens(await service.refresh(body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session")
async def logout(principal: CurrentPrincipal, service: AuthServiceDep) -> None:
    await service.logout(principal, everywhere=False)


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, summary="End every session")
async def logout_all(principal: CurrentPrincipal, service: AuthServiceDep) -> None:
    await service.logout(principal, everywhere=True)


@router.get("/sessions", summary="Your active sessions (devices)")
async def list_sessions(principal: CurrentPrincipal, service: AuthServiceDep) -> SessionList:
    sessions = await service.list_sessions(principal)
    items = [
        SessionRead.model_validate(s).model_copy(update={"current": s.id == principal.session_id})
        for s in sessions
    ]
    return SessionList(items=items)


@router.delete(
    "/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a session"
)
async def revoke_session(
    session_id: uuid.UUID, principal: CurrentPrincipal, service: AuthServiceDep
) -> None:
    await service.revoke_session(principal, session_id)


@router.get("/me", summary="Who you are, in which practice, with which permissions")
async def me(principal: CurrentPrincipal, session: SessionDep) -> MeResponse:
    user = await UserRepository(session).get(principal.require_user())
    assert user is not None  # the principal dependency just loaded it
    return MeResponse(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        tenant_id=principal.tenant_id,
        role=principal.role,
        permissions=sorted(principal.permissions),
    )


def account_service(request: Request, session: SessionDep) -> AccountService:
    state = request.app.state
    return AccountService(session, state.settings, state.password_hasher, state.outbox)


AccountServiceDep = Annotated[AccountService, Depends(account_service)]
FORGOT_ANSWER = "If an account exists for this e-mail, a reset link is on its way."


@router.post(
    "/register",
    dependencies=[Depends(limit_public("register"))],
    status_code=status.HTTP_201_CREATED,
    summary="Sign up: creates a practice with you as its owner",
)
async def register(body: RegisterRequest, service: AccountServiceDep) -> RegisterResponse:
    user, tenant = await service.register(
        email=body.email, password=body.password,
        full_name=body.full_name, practice_name=body.practice_name,
    )  # fmt: skip
    return RegisterResponse(
        user=UserRead.model_validate(user), tenant=TenantRead.model_validate(tenant)
    )


@router.post(
    "/forgot-password",
    status_code=status.HTTP_202_ACCEPTED,
    summary="E-mail a reset link (same answer whether or not the account exists)",
)
async def forgot_password(
    body: ForgotPasswordRequest, service: AccountServiceDep, limiter: LimiterDep, request: Request
) -> AcceptedResponse:
    await limiter.password_reset(request, body.email)
    await service.forgot_password(body.email)
    return AcceptedResponse(detail=FORGOT_ANSWER)


@router.post(
    "/reset-password",
    dependencies=[Depends(limit_public("public_links"))],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with a reset token (ends every session)",
)
async def reset_password(
    body: ResetPasswordRequest, service: AccountServiceDep, limiter: LimiterDep, request: Request
) -> None:
    await limiter.password_reset(request, None)
    await service.reset_password(body.token, body.new_password)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm your e-mail",
    dependencies=[Depends(limit_public("public_links"))],
)
async def verify_email(body: VerifyEmailRequest, service: AccountServiceDep) -> None:
    await service.verify_email(body.token)


@router.post(
    "/verify-email/resend",
    dependencies=[Depends(limit_public("public_links"))],
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send the verification e-mail again",
)
async def resend_verification(
    principal: CurrentPrincipal, service: AccountServiceDep, session: SessionDep
) -> AcceptedResponse:
    user = await UserRepository(session).get(principal.require_user())
    if user is not None and user.email_verified_at is None:
        await service.send_verification(user)
    return AcceptedResponse(detail="If your e-mail is not verified yet, a new link is on its way.")

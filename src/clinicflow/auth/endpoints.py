"""/auth: login (JSON and OAuth2 form), refresh, logout, sessions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from clinicflow.auth.account_service import AccountService
from clinicflow.auth.deps import CurrentPrincipal
from clinicflow.auth.models import AuthSession
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
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import NotAuthenticated, NotFound, PermissionDenied
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import Paging, page_of_list, sortable_instant
from clinicflow.core.ratelimit import RateLimiter, limit_public
from clinicflow.tenants.schemas import TenantRead
from clinicflow.users.repository import UserRepository
from clinicflow.users.schemas import UserRead

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/auth", tags=["auth"])


async def auth_service(request: Request, session: SessionDep) -> AuthService:
    return AuthService(session, request.app.state.settings, request.app.state.password_hasher)


AuthServiceDep = Annotated[AuthService, Depends(auth_service)]


async def rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


LimiterDep = Annotated[RateLimiter, Depends(rate_limiter)]


class RegisterResponse(BaseModel):
    user: UserRead = Field(description="Your new account.")
    tenant: TenantRead = Field(description="Your new practice, with you as owner.")


async def password_form(
    *,
    grant_type: Annotated[
        str | None, Form(pattern="^password$", description="`password`, or leave it out.")
    ] = None,
    # An empty form value counts as missing (422): minLength says so to generators.
    username: Annotated[
        str, Form(min_length=1, description="The account's username or e-mail address.")
    ],
    password: Annotated[
        str,
        Form(
            min_length=1,
            json_schema_extra={"format": "password"},
            description="The account's password.",
        ),
    ],
    scope: Annotated[str, Form(description="Ignored: permissions come from the role.")] = "",
    client_id: Annotated[str | None, Form(description="Ignored.")] = None,
    client_secret: Annotated[
        str | None, Form(json_schema_extra={"format": "password"}, description="Ignored.")
    ] = None,
) -> OAuth2PasswordRequestForm:
    """FastAPI's OAuth2 password form, the same fields, described for client generators. A
    coroutine: FastAPI builds a class or plain-function dependency in its thread pool."""
    return OAuth2PasswordRequestForm(
        grant_type=grant_type, username=username, password=password, scope=scope,
        client_id=client_id, client_secret=client_secret,
    )  # fmt: skip


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post(
    "/login",
    summary="Log in with username or e-mail and password",
    responses=problems(NotAuthenticated),
)
async def login(
    body: LoginRequest, service: AuthServiceDep, limiter: LimiterDep, request: Request
) -> TokenResponse:
    """Public. Returns an access token (JWT, `Authorization: Bearer ...`) and a refresh token.
    `username` may be the username or the e-mail. Unknown user, wrong password and locked
    account all answer the same 401; 5 failed logins lock the account for 30 minutes
    (configurable). Rate limited per IP and per account (429 with Retry-After). Writes
    auth.login or auth.login_failed audit events."""
    await limiter.login(request, body.username)
    return _tokens(await service.login(body.username, body.password))


@router.post(
    "/token", summary="Log in with the OAuth2 password form", responses=problems(NotAuthenticated)
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends(password_form)],
    service: AuthServiceDep,
    limiter: LimiterDep,
    request: Request,
) -> TokenResponse:
    """Public. The same as POST /auth/login, sent as an `application/x-www-form-urlencoded`
    OAuth2 password form (`username`, `password`), so Swagger UI's Authorize button and OAuth2
    clients work. Same lockout, rate limits and audit events as /auth/login."""
    await limiter.login(request, form.username)
    return _tokens(await service.login(form.username, form.password))


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new token pair",
    dependencies=[Depends(limit_public("token_refresh"))],
    responses=problems(NotAuthenticated),
)
async def refresh(body: RefreshRequest, service: AuthServiceDep) -> TokenResponse:
    """Public (the refresh token is the credential). Returns a new access and refresh token; the
    refresh token sent is spent (rotation). Presenting a spent refresh token again revokes its
    whole session family and answers 401 (reuse detection, audited as
    auth.refresh_token_reuse). Rate limited per IP."""
    return _tokens(await service.refresh(body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Log out of this session")
async def logout(principal: CurrentPrincipal, service: AuthServiceDep) -> None:
    """Logged-in user (bearer token; not an API key). Revokes the session of the access token
    used, so its refresh token stops working. Answers 204. Audited as auth.logout."""
    await service.logout(principal, everywhere=False)


@router.post(
    "/logout-all", status_code=status.HTTP_204_NO_CONTENT, summary="Log out of every session"
)
async def logout_all(principal: CurrentPrincipal, service: AuthServiceDep) -> None:
    """Logged-in user (bearer token; not an API key). Revokes every session of the user on every
    device, this one included. Answers 204. Audited as auth.logout_all."""
    await service.logout(principal, everywhere=True)


@router.get("/sessions", summary="List your active sessions")
async def list_sessions(
    principal: CurrentPrincipal, service: AuthServiceDep, page: Paging
) -> SessionList:
    """Logged-in user (bearer token). The user's unexpired, unrevoked sessions, newest first,
    with device details (user agent, IP, created, last used, expiry); `current` marks the
    session of the token used. `limit` at a time, follow `next_cursor`."""
    sessions, next_cursor = page_of_list(
        await service.list_sessions(principal), page, _by_creation, fields=2, descending=True
    )
    items = [
        SessionRead.model_validate(s).model_copy(update={"current": s.id == principal.session_id})
        for s in sessions
    ]
    return SessionList(items=items, next_cursor=next_cursor)


def _by_creation(session: AuthSession) -> tuple[str, str]:
    # Not by last use: that moves while a client pages (the paging request itself touches
    # its own session), and a session moved past the cursor would never be shown.
    return sortable_instant(session.created_at), str(session.id)


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke one of your sessions",
)
async def revoke_session(
    session_id: uuid.UUID, principal: CurrentPrincipal, service: AuthServiceDep
) -> None:
    """Logged-in user (bearer token). Ends one of the user's own sessions (e.g. a lost device);
    its refresh token stops working. 404 for an id that is not an active session of this user.
    Answers 204; audited as auth.session_revoked."""
    await service.revoke_session(principal, session_id)


@router.get("/me", summary="Get who you are and what you may do")
async def me(principal: CurrentPrincipal, session: SessionDep) -> MeResponse:
    """Logged-in user (bearer token). The user's id, e-mail and name, the practice the request
    acts in (`tenant_id`, chosen with X-Tenant-ID when the user has several), the role there
    and the resulting permission names. Use it to decide which operations to offer."""
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


async def account_service(request: Request, session: SessionDep) -> AccountService:
    state = request.app.state
    return AccountService(session, state.settings, state.password_hasher, state.outbox)


AccountServiceDep = Annotated[AccountService, Depends(account_service)]
FORGOT_ANSWER = "If an account exists for this e-mail, a reset link is on its way."


@router.post(
    "/register",
    dependencies=[Depends(limit_public("register"))],
    status_code=status.HTTP_201_CREATED,
    summary="Sign up and create a practice",
    responses=problems(PermissionDenied),
)
async def register(body: RegisterRequest, service: AccountServiceDep) -> RegisterResponse:
    """Public self sign-up (can be switched off by the operator: 403). Creates the user and a new
    practice (tenant) with the user as its owner, and e-mails an address verification link.
    Answers 201 with the user and the practice. An e-mail that has an account gets the same
    answer and nothing is stored (its owner is told by e-mail). 422 for a weak or common
    password. Rate limited per IP."""
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
    summary="Request a password reset e-mail",
)
async def forgot_password(
    body: ForgotPasswordRequest, service: AccountServiceDep, limiter: LimiterDep, request: Request
) -> AcceptedResponse:
    """Public. Always answers 202 with the same text, whether or not an account exists for the
    e-mail (no account enumeration). When one does, a single-use reset link valid for 30
    minutes is e-mailed. Rate limited per IP and per e-mail."""
    await limiter.password_reset(request, body.email)
    await service.forgot_password(body.email)
    return AcceptedResponse(detail=FORGOT_ANSWER)


@router.post(
    "/reset-password",
    dependencies=[Depends(limit_public("public_links"))],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Reset a password with a reset token",
    responses=problems(NotFound),
)
async def reset_password(
    body: ResetPasswordRequest, service: AccountServiceDep, limiter: LimiterDep, request: Request
) -> None:
    """Public (the token from the e-mail is the credential). Sets a new password; the token is
    single use and valid for 30 minutes (404 otherwise). Every session of the user is revoked
    and API keys the user created are suspended until an owner confirms them. Answers 204.
    Audited as user.password_reset."""
    await limiter.password_reset(request, None)
    await service.reset_password(body.token, body.new_password)


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm your e-mail address",
    dependencies=[Depends(limit_public("public_links"))],
    responses=problems(NotFound),
)
async def verify_email(body: VerifyEmailRequest, service: AccountServiceDep) -> None:
    """Public (the token from the verification e-mail is the credential). Marks the address as
    verified; registering patients and issuing API keys need a verified address. 404 for an
    invalid, expired or used token. Answers 204."""
    await service.verify_email(body.token)


@router.post(
    "/verify-email/resend",
    dependencies=[Depends(limit_public("public_links"))],
    status_code=status.HTTP_202_ACCEPTED,
    summary="Resend the e-mail verification link",
)
async def resend_verification(
    principal: CurrentPrincipal, service: AccountServiceDep, session: SessionDep
) -> AcceptedResponse:
    """Logged-in user (bearer token). Sends a new verification e-mail when the address is not
    verified yet; always answers 202 with the same text. Rate limited per IP."""
    user = await UserRepository(session).get(principal.require_user())
    if user is not None and user.email_verified_at is None:
        await service.send_verification(user)
    return AcceptedResponse(detail="If your e-mail is not verified yet, a new link is on its way.")

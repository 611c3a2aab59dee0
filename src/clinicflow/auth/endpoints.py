"""/auth: login (JSON and OAuth2 form), refresh, logout, sessions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from clinicflow.auth.deps import CurrentPrincipal
from clinicflow.auth.schemas import (
    LoginRequest,
    MeResponse,
    RefreshRequest,
    SessionList,
    SessionRead,
    TokenResponse,
)
from clinicflow.auth.service import AuthService, TokenPair
from clinicflow.core.database import SessionDep
from clinicflow.users.repository import UserRepository

router = APIRouter(prefix="/auth", tags=["auth"])


def auth_service(request: Request, session: SessionDep) -> AuthService:
    return AuthService(session, request.app.state.settings, request.app.state.password_hasher)


AuthServiceDep = Annotated[AuthService, Depends(auth_service)]


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post("/login", summary="Log in with username (or e-mail) and password")
async def login(body: LoginRequest, service: AuthServiceDep) -> TokenResponse:
    return _tokens(await service.login(body.username, body.password))


@router.post("/token", summary="OAuth2 password flow (Swagger's Authorize button)")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], service: AuthServiceDep
) -> TokenResponse:
    return _tokens(await service.login(form.username, form.password))


@router.post("/refresh", summary="Exchange a refresh token for a new pair (rotation)")
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
    user = await UserRepository(session).get(principal.user_id)
    assert user is not None  # the principal dependency just loaded it
    return MeResponse(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        tenant_id=principal.tenant_id,
        role=principal.role,
        permissions=sorted(principal.permissions),
    )

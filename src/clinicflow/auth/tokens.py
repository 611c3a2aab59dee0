"""Access tokens (signed JWT) and refresh tokens (opaque random strings, stored hashed)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from clinicflow.core.errors import NotAuthenticated
from clinicflow.core.models import utcnow
from clinicflow.core.settings import Settings

ACCESS_TYPE = "access"
REFRESH_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: str
    expires_at: datetime


def _key_id(secret: str) -> str:
    return hashlib.sha256(b"kid:" + secret.encode()).hexdigest()[:12]


def _verification_keys(settings: Settings) -> dict[str, str]:
    secrets_in_force = [settings.secret_key, *settings.previous_secret_keys]
    keys = [secret.get_secret_value() for secret in secrets_in_force]
    return {_key_id(key): key for key in keys}


def issue_access_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    role: str,
) -> tuple[str, int]:
    """Returns the token and its lifetime in seconds."""
    now = utcnow()
    lifetime = timedelta(minutes=settings.access_token_minutes)
    key = settings.secret_key.get_secret_value()
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "sid": str(session_id),
        "tid": str(tenant_id) if tenant_id else None,
        "role": role,
        "typ": ACCESS_TYPE,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + lifetime,
    }
    token = jwt.encode(claims, key, algorithm=settings.jwt_algorithm, headers={"kid": _key_id(key)})
    return token, int(lifetime.total_seconds())


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """Verify signature (key chosen by `kid`, algorithm pinned by settings), iss, aud, exp, typ."""
    invalid = NotAuthenticated("The access token is invalid or has expired.")
    try:
        header = jwt.get_unverified_header(token)
        key = _verification_keys(settings).get(str(header.get("kid")))
        if key is None:
            raise invalid
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
        if claims.get("typ") != ACCESS_TYPE:
            raise invalid
        tenant = claims.get("tid")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(claims["sid"]),
            tenant_id=uuid.UUID(tenant) if tenant else None,
            role=str(claims["role"]),
            expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as error:
        raise invalid from error


def new_refresh_token() -> tuple[str, str]:
    """Returns (token for the client, hash to store)."""
    token = "cfr_" + secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token(prefix: str, payload: bytes = b"") -> tuple[str, str]:
    """A single-use e-mail token: prefix + base64url(payload + 256 random bits); returns
    (token, SHA-256 to store). The payload (e.g. a tenant id) lets a lookup find its scope."""
    raw = payload + secrets.token_bytes(REFRESH_TOKEN_BYTES)
    token = prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return token, hash_refresh_token(token)


def opaque_token_payload(token: str, prefix: str, size: int) -> bytes | None:
    """The leading `size` bytes of a token made by new_opaque_token, or None if malformed."""
    if not token.startswith(prefix):
        return None
    body = token.removeprefix(prefix)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None
    return raw[:size] if len(raw) == size + REFRESH_TOKEN_BYTES else None

"""The key format: `cf_live_` + base64url(tenant id + 160 random bits) + `_` + checksum.

The tenant id lets authentication enter that tenant's RLS scope before looking the key up; the
checksum lets secret scanners (and we) reject a mistyped or made-up key without a query.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
import zlib

PREFIX = "cf_live_"
_RANDOM_BYTES = 20


def _checksum(body: str) -> str:
    return f"{zlib.crc32(body.encode()):08x}"


def new_key(tenant_id: uuid.UUID) -> tuple[str, str, str]:
    """Returns (the key, shown once; its display prefix; the SHA-256 to store)."""
    raw = tenant_id.bytes + secrets.token_bytes(_RANDOM_BYTES)
    body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    key = f"{PREFIX}{body}_{_checksum(body)}"
    return key, display_prefix(body), hash_key(key)


def display_prefix(body: str) -> str:
    """How lists show a key: its last random characters, since its first ones encode the
    practice and are the same for every key of it. Four characters (24 bits) tell a practice's
    keys apart and leave 136 of the 160 random bits unseen."""
    return f"{PREFIX}...{body[-4:]}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant_of(key: str) -> uuid.UUID | None:
    """The embedded tenant id, or None for anything that is not a well-formed key."""
    if not key.startswith(PREFIX) or key.count("_") < 3:
        return None
    body, _, checksum = key.removeprefix(PREFIX).rpartition("_")
    if not secrets.compare_digest(checksum, _checksum(body)):
        return None
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None
    if len(raw) != 16 + _RANDOM_BYTES:
        return None
    return uuid.UUID(bytes=raw[:16])

"""Encryption at rest: AES-256-GCM with a rotatable key ring (ENCRYPTION_KEYS).

ENCRYPTION_KEYS is "key_id:base64url(32 bytes)[,older_id:older_key...]": the first key encrypts,
every key decrypts, so rotation is "add a new first key (and restart with it), run `clinicflow
records rotate-key`, then drop the old one". Every value sealed with the ring is listed in
`clinicflow.keyrotation.SEALED`, which rotate-key re-seals and the start-up check covers: a new
sealed column goes there too. Associated data binds a ciphertext to its row, so a blob copied
to another row or practice does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT_VERSION = b"\x01"
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# 32 random bytes have ~30 distinct values; 16 or fewer is a pattern, not a key.
_MIN_DISTINCT_KEY_BYTES = 16


class EncryptionConfigError(ValueError):
    """ENCRYPTION_KEYS is malformed (the message never contains key material)."""


class MissingKeyError(Exception):
    """Data sealed with a key id that ENCRYPTION_KEYS no longer lists (e.g. a server still
    running with the old list after `records rotate-key`)."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"no key {key_id!r} in ENCRYPTION_KEYS")


class DecryptionError(Exception):
    """Unknown key id, tampered blob or wrong associated data."""


@dataclass(frozen=True, slots=True)
class Ciphertext:
    key_id: str
    blob: bytes  # version byte + nonce + ciphertext and tag


def associated_data(*parts: object) -> bytes:
    """Length-prefixed, so ("ab", "c") and ("a", "bc") differ."""
    encoded = [str(part).encode() for part in parts]
    return b"".join(len(part).to_bytes(4, "big") + part for part in encoded)


def generate_key_entry(key_id: str) -> str:
    if not _KEY_ID.match(key_id):
        raise EncryptionConfigError("key id: 1-32 letters, digits, '-' or '_'")
    return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"


class KeyRing:
    def __init__(self, keys: dict[str, AESGCM], active: str) -> None:
        self._keys = keys
        self.active_key_id = active

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active_key_id!r}, keys={sorted(self._keys)!r})"

    @classmethod
    def from_setting(cls, value: str) -> KeyRing:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        if not entries:
            raise EncryptionConfigError("ENCRYPTION_KEYS is empty")
        keys: dict[str, AESGCM] = {}
        for position, entry in enumerate(entries, start=1):
            key_id, _, encoded = entry.partition(":")
            if not _KEY_ID.match(key_id) or not encoded:
                raise EncryptionConfigError(f"entry {position}: expected key_id:base64url_key")
            if key_id in keys:
                raise EncryptionConfigError(f"entry {position}: key id {key_id!r} is repeated")
            keys[key_id] = AESGCM(_decode_key(encoded, position))
        return cls(keys, entries[0].partition(":")[0])

    def encrypt(self, plaintext: str, *, aad: bytes) -> Ciphertext:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.active_key_id].encrypt(nonce, plaintext.encode(), aad)
        return Ciphertext(self.active_key_id, _FORMAT_VERSION + nonce + sealed)

    def decrypt(self, ciphertext: Ciphertext, *, aad: bytes) -> str:
        key = self._keys.get(ciphertext.key_id)
        if key is None:
            raise MissingKeyError(ciphertext.key_id)
        blob = ciphertext.blob
        if blob[:1] != _FORMAT_VERSION or len(blob) < 1 + _NONCE_BYTES + 16:
            raise DecryptionError("unknown key or malformed ciphertext")
        try:
            return key.decrypt(blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :], aad).decode()
        except InvalidTag as error:
            raise DecryptionError("ciphertext does not authenticate") from error

    def has_key(self, key_id: str) -> bool:
        return key_id in self._keys

    def needs_rotation(self, ciphertext: Ciphertext) -> bool:
        return ciphertext.key_id != self.active_key_id

    def rotate(self, ciphertext: Ciphertext, *, aad: bytes) -> Ciphertext:
        return self.encrypt(self.decrypt(ciphertext, aad=aad), aad=aad)


def unsafe_key_ids(value: str, published: str) -> list[str]:
    """Ids in an ENCRYPTION_KEYS value whose key is not random: the published development key
    under any id, or material with few distinct bytes (all zeros, a repeated pattern)."""
    known = {_decode_key(encoded, 0) for _, _, encoded in [published.partition(":")]}
    unsafe = []
    for position, entry in enumerate(filter(None, map(str.strip, value.split(","))), start=1):
        key_id, _, encoded = entry.partition(":")
        raw = _decode_key(encoded, position)
        if raw in known or len(set(raw)) < _MIN_DISTINCT_KEY_BYTES:
            unsafe.append(key_id)
    return unsafe


def _decode_key(encoded: str, position: int) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as error:
        raise EncryptionConfigError(f"entry {position}: the key is not base64url") from error
    if len(raw) != 32:
        raise EncryptionConfigError(f"entry {position}: the key must be 32 bytes (AES-256)")
    return raw

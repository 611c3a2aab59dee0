"""The boundary of legacy (unkeyed) audit events, which only the audit key can vouch for.

Events written before migration 0020 carry a plain SHA-256 (mac_version 1) that anyone can
compute. Migration 0029 recorded, for each chain that held such events, the seq and hash of the
last one, with an HMAC under AUDIT_HMAC_KEY over the record. `clinicflow audit verify` accepts a
legacy event only inside its chain's record; a chain without a record holds none, and a record
whose MAC fails was tampered with. So rewriting keyed events, or a whole chain, as legacy ones
(which needs no key) is caught, and so is moving the boundary (which needs the key).
"""

from __future__ import annotations

import hashlib
import hmac

# `clinicflow db upgrade` hands the audit key to migrations under this alembic attribute.
AUDIT_KEY_ATTRIBUTE = "audit_hmac_key"


def extent_mac(key: bytes, chain: str, last_seq: int, last_hash: str) -> str:
    message = f"legacy-extent:{chain}:{last_seq}:{last_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()

"""schemathesis hooks for tests/contract.py: how each generated request is authenticated.

With CONTRACT_API_KEY set, every request carries that key. Otherwise the owner logs in, and logs
in again after any 401: fuzzing calls logout, logout-all and session deletion with the very
token it is using, which is the API working as documented, not a reason to stop testing.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import schemathesis
from hypothesis import strategies as st

BASE_URL = os.environ.get("CONTRACT_BASE_URL", "")
API_KEY = os.environ.get("CONTRACT_API_KEY")

# `format: password` fields: the document gives their length, and says that a guessable one is
# refused, which no schema keyword can express. The generator is told what a good one is: 20 hex
# characters from a hash (deterministic per draw, never a dictionary word or a repetition).
schemathesis.openapi.format(
    "password",
    st.integers(min_value=0).map(lambda n: hashlib.sha256(str(n).encode()).hexdigest()[:20]),
)


@schemathesis.auth(refresh_interval=600, retry_on=[401])
class ContractAuth:
    def get(self, case: Any, context: Any) -> str:
        if API_KEY:
            return API_KEY
        response = httpx.post(
            f"{BASE_URL}/api/v1/auth/login",
            json={
                "username": os.environ["CONTRACT_USERNAME"],
                "password": os.environ["CONTRACT_PASSWORD"],
            },
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = case.headers or {}
        if API_KEY:
            case.headers["X-API-Key"] = data
        else:
            case.headers["Authorization"] = f"Bearer {data}"

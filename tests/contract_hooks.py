"""schemathesis hooks for tests/contract.py: how each generated request is authenticated.

With CONTRACT_API_KEY set, every request carries that key. Otherwise the owner logs in, and logs
in again after any 401: fuzzing calls logout, logout-all and session deletion with the very
token it is using, which is the API working as documented, not a reason to stop testing.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, date, datetime, timedelta, timezone
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


# `date-time` inputs take years 1900-2199 (the document's pattern says so); hypothesis cannot
# combine a format with a pattern without discarding almost everything it draws.
schemathesis.openapi.format(
    "date-time",
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2199, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-3)), timezone(timedelta(hours=5, minutes=30))]
        ),
    ).map(datetime.isoformat),
)

# `date` inputs such as a birth date may not lie in the future (the field says so); e-mail
# addresses must be deliverable, which rules out the special-use domains (.test, .local...)
# hypothesis likes to draw.
schemathesis.openapi.format(
    "date", st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)).map(date.isoformat)
)
schemathesis.openapi.format(
    "email", st.from_regex(r"[a-z][a-z0-9.]{0,15}@[a-z]{2,12}\.(com|org|br)", fullmatch=True)
)


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    """`custom_fields` is checked against the practice's own field definitions (GET /tenant),
    which no static schema can list: generated patients send none."""
    operation = context.operation
    if (
        operation is not None
        and operation.path.startswith("/api/v1/patients")
        and isinstance(body, dict)
        and isinstance(body.get("custom_fields"), dict)
    ):
        return {**body, "custom_fields": {}}
    return body


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

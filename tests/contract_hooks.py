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
from urllib.parse import urlsplit

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
    "email", st.from_regex(r"[a-z][a-z0-9]{0,15}@[a-z]{2,12}\.(com|org|br)", fullmatch=True)
)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    """Every phase sends through here (the coverage phase does not use map_body)."""
    if isinstance(case.body, dict):
        case.body = _as_a_client_sends(case.operation.path, case.body)


def _as_a_client_sends(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Rules a static schema cannot state, followed as a client built from the document's
    descriptions would follow them; values of the wrong type are left alone."""
    if path.startswith("/api/v1/patients") and _day(body.get("birth_date"), future=True):
        body = {**body, "birth_date": "1990-05-17"}  # a birth date is not in the future
    registers = path == "/api/v1/patients" and "custom_fields" not in body
    if registers or (
        path.startswith("/api/v1/patients") and isinstance(body.get("custom_fields"), dict)
    ):  # a registration form shows the practice's required fields, whatever the run added
        return {**body, "custom_fields": _custom_fields_of_the_practice()}
    if path == "/api/v1/tenant":
        return _ordered_settings(body)
    if path == "/api/v1/integrations/n8n" and _http_url(body.get("base_url")):
        return {**body, "base_url": os.environ["CONTRACT_N8N_URL"]}  # the n8n this run has
    if path.startswith("/api/v1/appointments"):
        return _a_real_span(body)
    if path == "/api/v1/api-keys" and _instant(body.get("expires_at")):
        return {**body, "expires_at": _in_the_future(body["expires_at"])}
    return body


def _http_url(value: Any) -> bool:
    parts = urlsplit(value) if isinstance(value, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)


def _day(value: Any, *, future: bool) -> bool:
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return False
    return day is not None and (day > date.today()) == future


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _a_real_span(body: dict[str, Any]) -> dict[str, Any]:
    """An appointment lasts 5 to 720 minutes from its start (documented on `end`); a PATCH
    that moves only `end` is given the start that makes it one."""
    end, start = _instant(body.get("end")), _instant(body.get("start"))
    if end is None or ("start" in body and start is None):
        return body  # not a span this rule is about (e.g. a deliberately wrong type)
    start = start or end - timedelta(minutes=50)
    if not timedelta(minutes=5) <= end - start <= timedelta(minutes=720):
        end = start + timedelta(minutes=50)
    return {**body, "start": start.isoformat(), "end": end.isoformat()}


def _in_the_future(value: str) -> str:
    """An API key's `expires_at` lies in the future (documented on the field)."""
    moment = _instant(value)
    now = datetime.now(UTC)
    if moment is not None and moment <= now + timedelta(minutes=5):
        moment = now + timedelta(days=30)
    return moment.isoformat() if moment is not None else value


def _custom_fields_of_the_practice() -> dict[str, Any]:
    """`custom_fields` follows the practice's own definitions (GET /tenant), as a form built
    from them would: every required field gets a valid value, nothing else is sent."""
    practice = _owner_get("/api/v1/tenant")
    samples = {"text": "x", "number": 1, "boolean": True, "date": "2020-01-01"}
    return {
        field["key"]: samples.get(field["type"]) or field["choices"][0]
        for field in practice.get("custom_patient_fields") or []
        if field.get("required")
    }


def _ordered_settings(body: dict[str, Any]) -> dict[str, Any]:
    """Working hours as a practice writes them: each interval ends after it starts and the
    intervals of a day do not overlap (GET/PATCH /tenant says so; JSON Schema cannot)."""
    hours = body.get("working_hours")
    if isinstance(hours, dict):
        body = {**body, "working_hours": {day: _in_order(spans) for day, spans in hours.items()}}
    fields = body.get("custom_patient_fields")
    if isinstance(fields, list):  # keys are unique within a practice
        seen: set[Any] = set()
        unique = [f for f in fields if not isinstance(f, dict) or _first(f.get("key"), seen)]
        body = {**body, "custom_patient_fields": unique}
    return body


def _in_order(spans: Any) -> Any:
    if not isinstance(spans, list) or not all(
        isinstance(span, dict)
        and isinstance(span.get("start"), str)
        and isinstance(span.get("end"), str)
        for span in spans
    ):
        return spans
    kept: list[dict[str, Any]] = []
    for span in sorted(spans, key=lambda span: span["start"]):
        if span["start"] < span["end"] and (not kept or kept[-1]["end"] <= span["start"]):
            kept.append(span)
    return kept


def _first(key: Any, seen: set[Any]) -> bool:
    if not isinstance(key, str):
        return True  # a wrong type is the generator's point; leave it
    if key in seen:
        return False
    seen.add(key)
    return True


_owner_token: list[str] = []


def _owner_get(path: str) -> dict[str, Any]:
    for _ in range(2):
        if not _owner_token:
            _owner_token.append(_login())
        response = httpx.get(
            f"{BASE_URL}{path}", headers={"Authorization": f"Bearer {_owner_token[0]}"}, timeout=30
        )
        if response.status_code != 401:
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result
        _owner_token.clear()  # a fuzzed logout revoked it
    raise RuntimeError(f"GET {path} as the owner kept answering 401")


def _login() -> str:
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


@schemathesis.auth(refresh_interval=600, retry_on=[401])
class ContractAuth:
    def get(self, case: Any, context: Any) -> str:
        return API_KEY or _login()

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = case.headers or {}
        if API_KEY:
            case.headers["X-API-Key"] = data
        else:
            case.headers["Authorization"] = f"Bearer {data}"

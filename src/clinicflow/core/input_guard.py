"""One gate for text the database and the logs must never receive: control characters.

PostgreSQL refuses NUL in text (a 500 for a NUL in a login name or a search), and other control
characters in names or notes only serve to hide or forge things in logs, exports and e-mails.
This plain ASGI middleware looks at every input once, before any route runs: the path, the query
string and JSON or form bodies. Tab, line feed and carriage return stay allowed inside bodies
(notes have lines). A hit answers 422 naming the field; nothing runs, nothing is stored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinicflow.core.errors import problem_response

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # \t \n \r allowed
# A JSON escape of a forbidden character (raw ones are not valid JSON anyway); cheap to search
# before parsing, and parsing happens only to name the field.
_ESCAPED_CONTROL = re.compile(r"\\u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF])")
_MESSAGE = "Control characters (such as NUL) are not allowed."


class RejectControlCharacters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = _in_path_or_query(scope)
        if found is not None:
            await _refuse(scope, send, *found)
            return
        content_type = _header(scope, b"content-type")
        if not _inspected(content_type):
            await self.app(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        found = _in_body(body, content_type)
        if found is not None:
            await _refuse(scope, send, *found)
            return
        await self.app(scope, _replay(messages, receive), send)


def has_control_characters(text: str) -> bool:
    """The gate's rule for one line of text (a name, an address), for input that does not come
    through HTTP (the command line, settings)."""
    return _CONTROL.search(text) is not None


def _in_path_or_query(scope: Scope) -> tuple[str, list[str]] | None:
    if _CONTROL.search(scope["path"]):
        return "path", ["path"]
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), True):
        if _CONTROL.search(name) or _CONTROL.search(value):
            return name, ["query", name]
    return None


def _inspected(content_type: str) -> bool:
    """Every body a route parses: JSON (FastAPI takes any application/*+json as JSON too) and
    forms."""
    media_type = content_type.split(";", 1)[0].strip()
    return media_type in ("application/json", "application/x-www-form-urlencoded") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _in_body(body: bytes, content_type: str) -> tuple[str, list[str]] | None:
    text = body.decode("utf-8", errors="replace")
    if content_type.startswith("application/x-www-form-urlencoded"):
        for name, value in parse_qsl(text, True):
            if _CONTROL.search(name) or _CONTROL_IN_TEXT.search(value):
                return name, ["body", name]
        return None
    if not _ESCAPED_CONTROL.search(text):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None  # malformed JSON: the framework answers that itself
    for location in _control_locations(document, []):
        return ".".join(location) or "body", ["body", *location]
    return None


def _control_locations(value: Any, location: list[str]) -> Iterator[list[str]]:
    if isinstance(value, str) and _CONTROL_IN_TEXT.search(value):
        yield location
    elif isinstance(value, dict):
        for key, item in value.items():
            if _CONTROL.search(key):
                yield [*location, key]
            yield from _control_locations(item, [*location, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _control_locations(item, [*location, str(index)])


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1").lower())
    return ""


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body (RequestContextMiddleware, outside this one, caps its size)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _refuse(scope: Scope, send: Send, field: str, location: list[str]) -> None:
    error = {"field": field, "location": location, "message": _MESSAGE, "type": "control_character"}
    response = problem_response(
        422,
        "Validation failed",
        f"{field}: {_MESSAGE}",
        slug="validation-failed",
        request=Request(scope),
        extra={"errors": [error]},
    )
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


class StrictJSONRequest(Request):
    """A request whose JSON body is JSON as RFC 8259 defines it. Python's parser also takes
    NaN, Infinity and numbers past a double's range (1e400 becomes inf), which PostgreSQL's
    json refuses (a 500), and digits past Python's integer limit raise a bare ValueError (a
    500 too): each is answered as what it is, a body that is not valid JSON (422)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body, parse_constant=_not_json, parse_float=_finite)
            except json.JSONDecodeError:
                raise
            except ValueError as error:
                raise json.JSONDecodeError(str(error), body.decode("utf-8", "replace"), 0) from None
        return self._json


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not a JSON value")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"{literal} is out of range")
    return value

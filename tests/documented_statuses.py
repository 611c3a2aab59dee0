"""The OpenAPI document lists every status a route answers: checked against the whole suite.

Every request the suite sends through the `client` fixture is recorded as (method, route,
status). At the end of the run each one must be documented for its operation in
`/api/v1/openapi.json`; an undocumented one fails the run (tests/conftest.py wires the hooks,
across xdist workers too). So a new error path that the document forgot fails `make test`, not
a client generated from the document."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Observation = tuple[str, str, int]  # method, path as requested, status
OBSERVED: set[Observation] = set()


def recording(app: ASGIApp) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The app, noting each answer's route and status in OBSERVED."""

    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        answered: MutableMapping[str, int] = {}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            await send(message)

        await app(scope, receive, capture)
        route = scope.get("route")  # set by the router on the scope it was given
        if scope["type"] == "http" and route is not None and "status" in answered:
            OBSERVED.add((scope["method"].lower(), scope["path"], answered["status"]))

    return recorded


def undocumented(observed: Iterable[Observation], document: dict[str, Any]) -> list[str]:
    """Answers the document does not list for their operation. A 405 answers a method the
    operation does not have (tests/test_system.py checks its `Allow`); routes left out of the
    document are not its business."""
    templates = _templates(document)
    missing = set()
    for method, requested, status in observed:
        path = next((path for path, pattern in templates if pattern.fullmatch(requested)), "")
        operation = document["paths"].get(path, {}).get(method)
        if status == 405 or operation is None:
            continue
        if str(status) not in operation.get("responses", {}):
            missing.add(f"{method.upper()} {path} answered {status}")
    return sorted(missing)


def _templates(document: dict[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    """The document's paths as patterns, literal ones first (`/users/me` before
    `/users/{user_id}`)."""
    paths = sorted(document["paths"], key=lambda path: path.count("{"))
    return [(path, re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path))) for path in paths]

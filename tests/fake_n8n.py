"""A fake n8n speaking the public API's shape (`/api/v1/workflows`, `/api/v1/executions`),
served over real HTTP on 127.0.0.1 by the test that uses it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from tests.factories import Member
from tests.served import free_port

API_KEY = "n8n-api-key-of-the-practice"
NOW = datetime.now(UTC).replace(microsecond=0)


def _run(workflow: str, status: str, hours_ago: int, ms: int | None) -> dict[str, Any]:
    started = NOW - timedelta(hours=hours_ago)
    stopped = started + timedelta(milliseconds=ms) if ms is not None else None
    return {
        "id": f"{workflow}-{hours_ago}", "finished": status == "success", "mode": "webhook",
        "startedAt": started.isoformat().replace("+00:00", "Z"),
        "stoppedAt": stopped.isoformat().replace("+00:00", "Z") if stopped else None,
        "workflowId": workflow, "status": status,
    }  # fmt: skip


# Newest first, as n8n answers; two pages of three, and one run before the period.
EXECUTIONS = [
    _run("w1", "success", 1, 1000),
    _run("w2", "waiting", 2, None),
    _run("w1", "error", 3, 2000),
    _run("w2", "success", 4, 500),
    _run("w1", "success", 5, 3000),
    _run("w2", "canceled", 6, 100),
    _run("w1", "success", 24 * 40, 50),  # 40 days ago: outside the default 30-day period
]


class FakeN8n:
    def __init__(self) -> None:
        self.mode = "ok"
        self.requests = 0
        # What to answer instead of the regular pages, when set (a wrongly shaped answer).
        self.workflows_body: Any = None
        self.executions_body: Any = None
        # When set, each request waits for it (an n8n as slow as the test likes); `waiting` is
        # set once a request is waiting.
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route("/api/v1/workflows", self.workflows),
                Route("/api/v1/executions", self.executions),
            ]
        )

    async def _refused(self, request: Request) -> Response | None:
        self.requests += 1
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        if request.headers.get("x-n8n-api-key") != API_KEY or self.mode == "401":
            return JSONResponse({"message": "unauthorized"}, status_code=401)
        if self.mode == "500":
            return JSONResponse({"message": "boom"}, status_code=500)
        if self.mode == "garbage":
            return PlainTextResponse("<html>proxy error</html>")
        if self.mode == "redirect":
            return RedirectResponse("/signin?redirect=%2Fapi", status_code=302)
        if self.mode == "hang":
            await asyncio.sleep(5)
        if self.mode == "huge":  # valid JSON, but megabytes of it
            return JSONResponse({"data": [], "padding": "x" * (9 * 1024 * 1024)})
        return None

    async def workflows(self, request: Request) -> Response:
        refused = await self._refused(request)
        if refused is None and self.workflows_body is not None:
            return JSONResponse(self.workflows_body)
        return refused or JSONResponse(
            {"data": [{"id": "w1", "name": "Lead intake", "active": True},
                      {"id": "w2", "name": "Reminders", "active": True}],
             "nextCursor": None}
        )  # fmt: skip

    async def executions(self, request: Request) -> Response:
        refused = await self._refused(request)
        if refused:
            return refused
        if self.executions_body is not None:
            return JSONResponse(self.executions_body)
        start = int(request.query_params.get("cursor") or 0)
        page = EXECUTIONS[start : start + 3]
        more = start + 3 < len(EXECUTIONS)
        return JSONResponse({"data": page, "nextCursor": str(start + 3) if more else None})


@asynccontextmanager
async def serve_fake_n8n() -> AsyncIterator[tuple[FakeN8n, str]]:
    """A fake n8n on 127.0.0.1 in this event loop, and its root URL."""
    fake = FakeN8n()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="error")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.02)
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        if fake.gate is not None:
            fake.gate.set()
        server.should_exit = True
        await task


@asynccontextmanager
async def metrics_client(
    settings: Settings, **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"n8n_timeout_seconds": 1.0, **overrides}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def connect(client: httpx.AsyncClient, owner: Member, base_url: str) -> httpx.Response:
    return await client.put(
        "/api/v1/integrations/n8n", json={"base_url": base_url + "/api/v1", "api_key": API_KEY},
        headers=owner.headers,
    )  # fmt: skip

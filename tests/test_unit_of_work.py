"""One request, one unit of work (`core.database.UnitOfWorkRoute`): the session commits once,
before the response is sent; what the commit scheduled runs after it, and only if it held."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask
from starlette.types import Message

from clinicflow.core.database import (
    SessionDep,
    UnitOfWorkRoute,
    create_database,
    run_after_commit,
)
from clinicflow.core.ratelimit import default_rate_limit
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.main import API_ROUTERS, create_app
from clinicflow.patients.models import Patient
from clinicflow.system.endpoints import router as system_router
from tests import documented_statuses
from tests.factories import make_member, make_tenant, post_raw

RAN: list[str] = []


def _routes(*routers: APIRouter) -> list[APIRoute]:
    return [route for router in routers for route in router.routes if isinstance(route, APIRoute)]


def test_every_api_route_runs_in_the_unit_of_work() -> None:
    """A route outside it would find no session (a 500) and commit nothing."""
    routes = _routes(*API_ROUTERS)
    assert len(routes) > 50
    assert [route.path for route in routes if not isinstance(route, UnitOfWorkRoute)] == []


def _runs_in_threadpool(call: Callable[..., Any]) -> bool:
    """FastAPI awaits a coroutine function (or an object whose __call__ is one) in the event
    loop and hands anything else (plain functions, classes) to its thread pool."""
    target = call if inspect.isroutine(call) else type(call).__call__
    return not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target))


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def test_no_route_or_dependency_waits_for_the_thread_pool() -> None:
    """A thread-pool hop costs a request two thread switches, and under logins the pool's
    threads are busy hashing passwords: every endpoint and dependency is a coroutine."""
    offenders = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in _routes(*API_ROUTERS, system_router)
        for call in [
            route.endpoint,
            default_rate_limit,
            *(sub.call for sub in _dependencies(route.dependant) if sub.call is not None),
        ]
        if _runs_in_threadpool(call)
    }
    assert sorted(offenders) == []


@pytest.fixture
async def probe(db: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, uuid.UUID]]:
    """Routes added on the app itself (which makes them UnitOfWorkRoutes too)."""
    tenant_id = await make_tenant(db)

    async def note(name: str) -> None:
        RAN.append(name)

    @db.post(f"/test-only/{tenant_id}/write")
    async def write(session: SessionDep) -> JSONResponse:
        await set_session_tenant(session, tenant_id)
        session.add(Patient(full_name="Committed", custom_fields={}))
        run_after_commit(session, partial(note, "after commit"))
        return JSONResponse({"ok": True}, background=BackgroundTask(note, "response's own"))

    @db.post(f"/test-only/{tenant_id}/bug")
    async def bug(session: SessionDep) -> JSONResponse:
        await set_session_tenant(session, tenant_id)
        session.add(Patient(full_name="Never kept", custom_fields={}))
        await session.flush()
        raise RuntimeError("internals a client must not read")

    RAN.clear()
    # An unexpected error reaches the client as the server answers it, a 500 problem.
    transport = httpx.ASGITransport(
        app=documented_statuses.recording(db), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client, tenant_id
    db.router.routes[:] = [
        route for route in db.router.routes if str(tenant_id) not in getattr(route, "path", "")
    ]


async def _names(db: FastAPI, tenant_id: uuid.UUID) -> list[str]:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, tenant_id)
        return list(await session.scalars(select(Patient.full_name)))


async def test_a_request_commits_then_runs_the_work_scheduled_after_it(
    db: FastAPI, probe: tuple[httpx.AsyncClient, uuid.UUID]
) -> None:
    client, tenant_id = probe
    response = await client.post(f"/test-only/{tenant_id}/write")
    assert response.status_code == 200
    assert await _names(db, tenant_id) == ["Committed"]
    assert RAN == ["response's own", "after commit"]


async def test_a_commit_that_fails_is_an_error_response_and_nothing_runs_after_it(
    db: FastAPI, probe: tuple[httpx.AsyncClient, uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit happens before the response is sent: a client is never told of a change
    the database did not keep."""
    client, tenant_id = probe

    async def refuse(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, Exception("the server went away"))

    monkeypatch.setattr(AsyncSession, "commit", refuse)
    response = await client.post(f"/test-only/{tenant_id}/write")
    monkeypatch.undo()

    assert response.status_code >= 500
    assert response.headers["content-type"] == "application/problem+json"
    assert await _names(db, tenant_id) == []
    assert RAN == []


async def test_a_bug_answers_a_500_problem_with_the_request_id_and_security_headers(
    db: FastAPI, probe: tuple[httpx.AsyncClient, uuid.UUID]
) -> None:
    """SPEC §4: every response has X-Request-ID, a 500 included (it is how an operator finds
    the logged traceback); the bug's own words stay in the log; its writes are undone."""
    client, tenant_id = probe
    response = await client.post(
        f"/test-only/{tenant_id}/bug", headers={"X-Request-ID": "support-ticket-4711"}
    )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:clinicflow:problem:internal-error"
    assert response.headers["x-request-id"] == "support-ticket-4711"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "internals" not in response.text
    assert await _names(db, tenant_id) == []


async def test_a_client_gone_before_its_body_arrived_is_a_client_error(db: FastAPI) -> None:
    """Reading the body stays the framework's: a disconnect midway is a 400, not a 500."""
    owner = await make_member(db, role="owner")

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    answered = await post_raw(
        db, owner, "/api/v1/patients", gone, content_type="application/octet-stream"
    )

    assert answered == [400]


async def test_requests_beyond_the_pool_wait_for_a_connection_instead_of_opening_one(
    settings: Settings,
) -> None:
    """An overflow connection was opened for one request and closed again: under a burst most
    requests paid for a new connection. The pool's connections are the process's, kept."""
    database = create_database(settings.model_copy(update={"database_pool_size": 2}))
    opened: list[object] = []
    event.listen(database.engine.sync_engine, "connect", lambda *_: opened.append(1))

    async def hold_a_connection() -> None:
        async with database.sessionmaker() as session:
            await session.execute(text("SELECT pg_sleep(0.05)"))

    try:
        for _ in range(2):  # a second burst reuses the kept connections
            await asyncio.gather(*(hold_a_connection() for _ in range(6)))
    finally:
        await database.dispose()
    assert len(opened) == 2


async def test_a_request_that_finds_every_connection_busy_answers_503_and_changes_nothing(
    db: FastAPI, settings: Settings
) -> None:
    """Overload (a burst, long exports holding connections) is not a server error: a 503 the
    client may retry, after waiting DATABASE_POOL_TIMEOUT_SECONDS for a connection."""
    owner = await make_member(db, role="owner")
    busy = create_app(
        settings.model_copy(update={"database_pool_size": 1, "database_pool_timeout_seconds": 0.2})
    )
    async with busy.router.lifespan_context(busy):
        transport = httpx.ASGITransport(app=documented_statuses.recording(busy))
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as http,
            busy.state.database.sessionmaker() as holder,
        ):
            await holder.connection()  # the pool's only connection, held
            refused = await http.post(
                "/api/v1/patients", json={"full_name": "Waiting"}, headers=owner.headers
            )
            await holder.rollback()
            served = await http.get("/api/v1/patients", headers=owner.headers)
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["type"] == "urn:clinicflow:problem:service-unavailable"
    assert served.status_code == 200
    assert served.json()["items"] == []  # the refused write stored nothing


@pytest.mark.parametrize(
    "unreachable",
    [
        "postgresql+asyncpg://nobody@127.0.0.1:1/none",  # nothing listening: ConnectionRefused
        "postgresql+asyncpg://postgres@127.0.0.1:5432/template0",  # refuses connections
    ],
)
async def test_a_database_that_cannot_be_reached_answers_503_not_500(
    db: FastAPI, settings: Settings, unreachable: str
) -> None:
    """Down, restarting or refusing connections: a 503 the client may retry, not an error."""
    owner = await make_member(db, role="owner")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        working = app.state.database
        app.state.database = create_database(settings, url=unreachable)
        try:
            transport = httpx.ASGITransport(app=documented_statuses.recording(app))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                refused = await http.post(
                    "/api/v1/patients", json={"full_name": "Lost"}, headers=owner.headers
                )
        finally:
            await app.state.database.dispose()
            app.state.database = working
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "5"
    assert refused.json()["type"] == "urn:clinicflow:problem:service-unavailable"

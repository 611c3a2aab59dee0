"""The planned dependency solver (core/dependencies) answers what FastAPI's own solver answers:
the same values and errors, the same dependencies called in the same order."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import fastapi.routing
import httpx
import pytest
from fastapi import Body, Cookie, Depends, FastAPI, Header, Query, Request
from fastapi._compat import Undefined
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.dependencies.utils import solve_dependencies as fastapi_solver
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pydantic import AfterValidator, AliasChoices, BaseModel, Field
from starlette.responses import Response

from clinicflow.core import dependencies
from clinicflow.main import API_ROUTERS, create_app
from clinicflow.system.endpoints import router as system_router

CALLS: list[str] = []
bearer = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False)
api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


async def session(request: Request) -> str:
    CALLS.append("session")
    return f"session:{request.url.path}"


async def caller(
    request: Request,
    db: Annotated[str, Depends(session)],
    token: Annotated[str | None, Depends(bearer)],
    key: Annotated[str | None, Depends(api_key)],
    x_tenant_id: Annotated[uuid.UUID | None, Header()] = None,
) -> dict[str, Any]:
    CALLS.append("caller")
    return {"db": db, "token": token, "key": key, "tenant": x_tenant_id}


async def rate_limit(request: Request) -> None:
    CALLS.append("rate_limit")


async def paging(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern="^[a-z]+$")] = None,
) -> tuple[int, str | None]:
    CALLS.append("paging")
    return limit, cursor


async def needs_caller(who: Annotated[dict[str, Any], Depends(caller)]) -> str:
    CALLS.append("needs_caller")
    return str(who["token"])


class Note(BaseModel):
    text: str = Field(min_length=1)
    score: int = 0


async def endpoint(
    item_id: uuid.UUID,
    who: Annotated[dict[str, Any], Depends(caller)],
    db: Annotated[str, Depends(session)],
    page: Annotated[tuple[int, str | None], Depends(paging)],
    again: Annotated[str, Depends(needs_caller)],
    start: Annotated[datetime, Query(alias="from")],
    note: Note | None = None,
    tags: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    codes: Annotated[list[int] | None, Query()] = None,
    colour: Annotated[str | None, Query(validation_alias=AliasChoices("colour", "color"))] = None,
    active: bool | None = None,
    theme: Annotated[str | None, Cookie()] = None,
    weight: Annotated[int | None, Body()] = None,
) -> None:
    raise AssertionError("solvers do not call the endpoint")


def _dependant() -> Dependant:
    dependant = get_dependant(path="/items/{item_id}", call=endpoint)
    dependant.dependencies.insert(0, get_dependant(path="", call=rate_limit))
    return dependant


def _request(
    query: list[tuple[str, str]], headers: dict[str, str], item_id: str = str(uuid.uuid4())
) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/items/{item_id}",
        "query_string": urlencode(query).encode(),
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "path_params": {"item_id": item_id},
        "fastapi_inner_astack": AsyncExitStack(),
        "fastapi_function_astack": AsyncExitStack(),
    }
    return Request(scope)


START = ("from", "2026-12-03T10:00:00Z")
CASES: dict[str, tuple[list[tuple[str, str]], dict[str, str], Any, str]] = {
    "valid, defaults": ([START], {}, Undefined, str(uuid.uuid4())),
    "every parameter": (
        [
            START,
            ("limit", "7"),
            ("cursor", "abc"),
            ("tags", "a"),
            ("tags", "b"),
            ("codes", "4"),
            ("color", "red"),
            ("active", "1"),
        ],
        {
            "Authorization": "Bearer tok",
            "X-API-Key": "k",
            "X-Tenant-Id": str(uuid.uuid4()),
            "Cookie": "theme=dark",
        },
        {"note": {"text": "hi", "score": "3"}, "weight": 2},
        str(uuid.uuid4()),
    ),
    "errors everywhere": (
        [
            ("limit", "0"),
            ("cursor", "ABC"),
            ("codes", "x"),
            ("colour", ""),
            ("active", "maybe"),
            ("from", "yday"),
        ],
        {"X-Tenant-Id": "not-a-uuid"},
        {"note": {"text": "", "score": "x"}, "weight": "heavy"},
        "not-a-uuid",
    ),
    "missing required": ([("limit", "500")], {}, Undefined, str(uuid.uuid4())),
    "alias name itself is not the alias": ([("start", "2026-12-03T10:00:00Z")], {}, None, "x"),
}


async def _solve(solver: Any, dependant: Dependant, case: str) -> tuple[Any, list[Any], list[str]]:
    query, headers, body, item_id = CASES[case]
    CALLS.clear()
    solved = await solver(
        request=_request(query, headers, item_id),
        dependant=dependant,
        body=body,
        async_exit_stack=AsyncExitStack(),
        embed_body_fields=True,
    )
    values = {
        name: value for name, value in solved.values.items() if not isinstance(value, Request)
    }
    return values, solved.errors, list(CALLS)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_plan_answers_what_fastapi_answers(case: str) -> None:
    dependant = _dependant()
    assert dependencies.plan_for(dependant) is not None
    planned = await _solve(dependencies.solve_dependencies, dependant, case)
    expected = await _solve(fastapi_solver, dependant, case)
    assert planned == expected
    if case == "errors everywhere":  # the comparison is of something
        assert len(planned[1]) >= 8
        # A dependency whose own parameters failed is not called; its siblings still are.
        assert planned[2] == ["rate_limit", "session"]


def plain(limit: int = 5) -> int:  # FastAPI runs it in its thread pool
    CALLS.append("plain")
    return limit


async def takes_response(value: Annotated[int, Depends(plain)], response: Response) -> None:
    raise AssertionError("solvers do not call the endpoint")


async def test_a_tree_the_plan_does_not_cover_is_solved_by_fastapi() -> None:
    dependant = get_dependant(path="/", call=takes_response)
    assert dependencies.plan_for(dependant) is None
    solved = await dependencies.solve_dependencies(
        request=_request([("limit", "9")], {}),
        dependant=dependant,
        async_exit_stack=AsyncExitStack(),
        embed_body_fields=False,
    )
    assert solved.values["value"] == 9
    assert solved.errors == []
    assert isinstance(solved.values["response"], Response)


def test_every_route_of_the_app_is_planned_and_the_solver_installed() -> None:
    """A dependency FastAPI alone can solve would quietly cost every request of its route."""
    create_app()
    assert getattr(fastapi.routing, "solve_dependencies") is dependencies.solve_dependencies  # noqa: B009
    routes = [
        route
        for router in (*API_ROUTERS, system_router)
        for route in router.routes
        if isinstance(route, APIRoute)
    ]
    assert len(routes) > 100
    unplanned = [route.path for route in routes if dependencies.plan_for(route.dependant) is None]
    assert unplanned == []


async def overriding_session(request: Request) -> str:
    return "overridden"


async def show_session(db: Annotated[str, Depends(session)]) -> dict[str, str]:
    return {"db": db}


async def test_dependency_overrides_still_apply() -> None:
    """Overrides (tests' way to swap a dependency) go through FastAPI's own solver."""

    dependencies.install()
    app = FastAPI()
    app.get("/show")(show_session)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/show")).json() == {"db": "session:/show"}
        app.dependency_overrides[session] = overriding_session
        assert (await client.get("/show")).json() == {"db": "overridden"}


CHECKED: list[int] = []


def _checked(value: int) -> int:
    CHECKED.append(value)
    return value


async def checked_page(n: Annotated[int, Query(), AfterValidator(_checked)] = 1) -> int:
    return n


async def wraps_checked_page(p: Annotated[int, Depends(checked_page)]) -> int:
    return p


async def twice_checked(
    x: Annotated[int, Depends(checked_page)], y: Annotated[int, Depends(wraps_checked_page)]
) -> None:
    raise AssertionError("solvers do not call the endpoint")


async def test_a_cached_dependency_s_inputs_are_checked_again_as_fastapi_does() -> None:
    """FastAPI validates a cached dependency's parameters each time it appears (a validator
    with an effect runs twice; a body changed in between fails the second time)."""
    dependant = get_dependant(path="/", call=twice_checked)
    seen = []
    for solver in (dependencies.solve_dependencies, fastapi_solver):
        CHECKED.clear()
        await solver(
            request=_request([("n", "5")], {}),
            dependant=dependant,
            async_exit_stack=AsyncExitStack(),
            embed_body_fields=False,
        )
        seen.append(list(CHECKED))
    assert seen == [[5, 5], [5, 5]]

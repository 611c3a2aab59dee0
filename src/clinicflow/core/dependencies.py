"""Route dependencies solved by a plan made once per dependency tree, not worked out anew on
every request.

FastAPI's request handler calls `fastapi.routing.solve_dependencies` for every request, and
that function (FastAPI 0.165) derives again, per request and per dependency, what never changes
for a route: each dependency's cache key (walking its sub-tree for OAuth scopes), whether its
callable is a coroutine or a generator, each parameter's aliases and kind. Profiled on a list
page served by one worker, that bookkeeping was ~20% of the request's CPU; with this module
in place a list, agenda or availability page costs ~15% less CPU in the same process.

`install()` puts `solve_dependencies` below in FastAPI's place. On a tree's first request it
builds a `_Plan` with FastAPI's own functions (so the cache keys and kinds are FastAPI's),
then only walks it: solve and call each dependency once per request (cached as FastAPI
caches, its inputs checked again wherever it appears, as FastAPI checks them), validate each
parameter with its own field, the body with FastAPI's `request_body_to_args`. Values and
errors come out as FastAPI's would, in the same order. A plan lasts as long as the process:
FastAPI builds a route's tree once and never changes it.

A tree holding anything the plan leaves out is solved by FastAPI's function, unchanged:
generator or plain-function dependencies, concurrency limits, `use_cache=False`, parameter
models, JSON-typed parameters, `Response` / `BackgroundTasks` / `SecurityScopes` / WebSocket
parameters; so is every request while `app.dependency_overrides` is set (tests). If a FastAPI
release changes the function's signature, `install()` leaves FastAPI's in place.
tests/test_dependency_plans.py compares both solvers' values and errors.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import fastapi.routing
import structlog
from fastapi._compat import ModelField, Undefined, field_annotation_is_sequence
from fastapi.dependencies.models import (
    Dependant,
    _get_cache_key,
    _is_async_gen_callable,
    _is_coroutine_callable,
    _is_gen_callable,
)
from fastapi.dependencies.utils import (
    SolvedDependency,
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    _validate_value_with_model_field,
    request_body_to_args,
)
from fastapi.dependencies.utils import solve_dependencies as fastapi_solve_dependencies
from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

logger = structlog.get_logger(__name__)
Source = Literal["path", "query", "header", "cookie"]
_FASTAPI_SOLVER = fastapi_solve_dependencies
# The keyword arguments fastapi.routing passes (or may pass) to solve_dependencies.
_SIGNATURE = {
    "request",
    "dependant",
    "body",
    "background_tasks",
    "response",
    "dependency_overrides_provider",
    "dependency_cache",
    "async_exit_stack",
    "embed_body_fields",
    "_uses_scopes_cache",
}


class _NotPlanned(Exception):
    """The tree holds something only FastAPI's own solver handles."""


@dataclass(frozen=True, slots=True)
class _Parameter:
    field: ModelField
    source: Source
    # (validation alias, the name in the request): the first one the request carries wins.
    aliases: tuple[tuple[str, str], ...]
    sequence: bool  # taken with getlist() from a query or the headers; empty means absent

    def take(self, received: Mapping[str, Any]) -> tuple[Any, tuple[str, str]]:
        """The raw value (Undefined when absent) and its error location, as FastAPI takes
        them (`request_params_to_args`, `_get_multidict_value`)."""
        if len(self.aliases) == 1:  # nearly always: no choice to make
            alias = self.aliases[0][1]
        else:
            alias = next((name for _, name in self.aliases if name in received), self.aliases[0][1])
        value: Any
        if self.sequence and isinstance(received, ImmutableMultiDict | Headers):
            value = received.getlist(alias)
        else:
            value = received.get(alias)
        if value is None or (self.sequence and len(value) == 0):
            value = Undefined
        return value, (self.source, alias)


@dataclass(frozen=True, slots=True)
class _Plan:
    """One node of a dependency tree: the route's endpoint at the root, or a dependency."""

    call: Callable[..., Any] | None
    name: str | None
    cache_key: Any
    dependencies: tuple[_Plan, ...]
    parameters: tuple[tuple[Source, tuple[_Parameter, ...]], ...]
    body: tuple[ModelField, ...]
    request_names: tuple[str, ...]

    async def solve(
        self, request: Request, body: Any, embed_body_fields: bool, cache: dict[Any, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        """This node's arguments: its dependencies' results, parameters and body."""
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for dependency in self.dependencies:
            # Its own inputs are checked even when its result is cached, as FastAPI does.
            arguments, failed = await dependency.solve(request, body, embed_body_fields, cache)
            if failed:  # not called; its siblings still are
                errors.extend(failed)
                continue
            if dependency.cache_key in cache:
                solved = cache[dependency.cache_key]
            else:
                assert dependency.call is not None
                solved = await dependency.call(**arguments)
                cache[dependency.cache_key] = solved
            if dependency.name is not None:
                values[dependency.name] = solved
        for source, parameters in self.parameters:
            received = _received(request, source)
            taken: dict[str, Any] = {}
            for parameter in parameters:
                raw, location = parameter.take(received)
                value, failed = _validate_value_with_model_field(
                    field=parameter.field, value=raw, values=taken, loc=location
                )
                if failed:
                    errors.extend(failed)
                else:
                    taken[parameter.field.name] = value
            values.update(taken)
        if self.body:
            body_values, body_errors = await request_body_to_args(
                body_fields=list(self.body), received_body=body, embed_body_fields=embed_body_fields
            )
            values.update(body_values)
            errors.extend(body_errors)
        for name in self.request_names:
            values[name] = request
        return values, errors


def _received(request: Request, source: Source) -> Mapping[str, Any]:
    if source == "query":
        return request.query_params
    if source == "header":
        return request.headers
    if source == "path":
        return request.path_params
    return request.cookies


def _parameters(dependant: Dependant) -> tuple[tuple[Source, tuple[_Parameter, ...]], ...]:
    groups: list[tuple[Source, Sequence[ModelField]]] = [
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("header", dependant.header_params),
        ("cookie", dependant.cookie_params),
    ]
    planned = []
    for source, fields in groups:
        if not fields:
            continue
        parameters = []
        for field in fields:
            if _get_param_model(field) is not None or _is_json_field(field):
                raise _NotPlanned(f"parameter {field.name}")
            aliases = tuple(_get_param_aliases(field))
            sequence = field_annotation_is_sequence(field.field_info.annotation)
            parameters.append(_Parameter(field, source, aliases, sequence))
        planned.append((source, tuple(parameters)))
    return tuple(planned)


def _plan(dependant: Dependant, *, root: bool) -> _Plan:
    call = dependant.call
    if (
        dependant.websocket_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    ):
        raise _NotPlanned("a parameter only FastAPI provides")
    if not root:
        if call is None or not dependant.use_cache or dependant.concurrency is not None:
            raise _NotPlanned("uncached or limited dependency")
        if _is_gen_callable(call) or _is_async_gen_callable(call):
            raise _NotPlanned("generator dependency")
        if not _is_coroutine_callable(call):
            raise _NotPlanned("dependency run in the thread pool")
    request_names = tuple(
        name
        for name in (dependant.http_connection_param_name, dependant.request_param_name)
        if name is not None
    )
    return _Plan(
        call=call,
        name=dependant.name,
        cache_key=None if root else _get_cache_key(dependant=dependant),
        dependencies=tuple(_plan(sub, root=False) for sub in dependant.dependencies),
        parameters=_parameters(dependant),
        body=tuple(dependant.body_params),
        request_names=request_names,
    )


# id(dependant) -> (the dependant, its plan or None): FastAPI's Dependant is not hashable.
_plans: dict[int, tuple[Dependant, _Plan | None]] = {}


def plan_for(dependant: Dependant) -> _Plan | None:
    """The tree's plan, made on first use; None for a tree FastAPI's solver must handle."""
    known = _plans.get(id(dependant))
    if known is not None and known[0] is dependant:
        return known[1]
    try:
        plan: _Plan | None = _plan(dependant, root=True)
    except _NotPlanned as reason:
        logger.debug("dependencies_not_planned", path=dependant.path, reason=str(reason))
        plan = None
    _plans[id(dependant)] = (dependant, plan)
    return plan


async def solve_dependencies(
    *,
    request: Request,
    dependant: Dependant,
    body: Any = Undefined,
    background_tasks: Any = None,
    response: Response | None = None,
    dependency_overrides_provider: Any = None,
    dependency_cache: dict[Any, Any] | None = None,
    async_exit_stack: Any,
    embed_body_fields: bool,
    _uses_scopes_cache: Any = None,
) -> SolvedDependency:
    """FastAPI's `solve_dependencies`, by the tree's plan where it has one."""
    plan = plan_for(dependant) if isinstance(request, Request) else None
    overridden = getattr(dependency_overrides_provider, "dependency_overrides", None)
    if plan is None or overridden or background_tasks is not None or response is not None:
        solved: SolvedDependency = await _FASTAPI_SOLVER(
            request=request,
            dependant=dependant,
            body=body,
            background_tasks=background_tasks,
            response=response,
            dependency_overrides_provider=dependency_overrides_provider,
            dependency_cache=dependency_cache,
            async_exit_stack=async_exit_stack,
            embed_body_fields=embed_body_fields,
            _uses_scopes_cache=_uses_scopes_cache,
        )
        return solved
    cache = {} if dependency_cache is None else dependency_cache
    values, errors = await plan.solve(request, body, embed_body_fields, cache)
    # What FastAPI hands the endpoint's handler: a response whose status and headers a
    # dependency could have set (none of ours takes it, or the tree would not be planned).
    blank = Response()
    del blank.headers["content-length"]
    blank.status_code = None  # type: ignore[assignment]
    return SolvedDependency(
        values=values,
        errors=errors,
        background_tasks=None,
        response=blank,
        dependency_cache=cache,
    )


def install() -> None:
    """Idempotent. Leaves FastAPI's solver in place if its signature is not the one this
    module was written against."""
    if getattr(fastapi.routing, "solve_dependencies", None) is solve_dependencies:
        return
    parameters = set(inspect.signature(_FASTAPI_SOLVER).parameters)
    if parameters != _SIGNATURE:
        logger.warning("dependency_plans_not_installed", fastapi_parameters=sorted(parameters))
        return
    # The name fastapi.routing's request handler looks up on every request.
    setattr(fastapi.routing, "solve_dependencies", solve_dependencies)  # noqa: B010

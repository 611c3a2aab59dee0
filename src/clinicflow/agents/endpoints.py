"""/mcp: the Model Context Protocol server (streamable HTTP, official `mcp` SDK) in the API's
own process, behind the practice's API key.

Every HTTP request is authenticated (and rate limited, per key as for REST) before the SDK sees
it: no key or a bad one gets 401 with `WWW-Authenticate`, as the MCP authorization spec says, and
nothing runs. The server is stateless (JSON responses, no session affinity), so any worker can
answer any request. Each tool call runs in one unit of work (the request session's rules), in
the key's tenant.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from clinicflow import __version__
from clinicflow.agents.tools import TOOLS, TOOLS_BY_NAME, AgentTool, Call
from clinicflow.apikeys.auth import authenticate_key
from clinicflow.auth.deps import Principal, authorize, key_principal
from clinicflow.core.database import AfterCommit, Database, unit_of_work
from clinicflow.core.errors import ClinicFlowError, NotAuthenticated, problem_response
from clinicflow.core.logging import request_meta
from clinicflow.core.ratelimit import charge_refused, charge_verified
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.tenants.repository import TenantRepository

PATH = "/mcp"
_PRINCIPAL = "clinicflow.principal"
logger = structlog.get_logger("clinicflow.mcp")
INSTRUCTIONS = (
    "You act as the receptionist of one health practice. Find the patient first "
    "(find_patient, or create_patient when nobody matches), look for free slots "
    "(get_availability), then book, reschedule or cancel. Times are ISO 8601 with an offset, in "
    "the practice's time zone (list_professionals gives it). Never invent ids."
)


def presented_key(request: Request) -> str | None:
    """The API key from X-API-Key, or from `Authorization: Bearer <api key>`."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


def _unauthorized(description: str) -> Response:
    """The MCP authorization spec's answer (RFC 6750 invalid_token), like the SDK's own."""
    return JSONResponse(
        {"error": "invalid_token", "error_description": description},
        status_code=401,
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'
        },
    )


class McpEndpoint:
    """The ASGI endpoint mounted at /mcp: authenticate, rate limit, then the SDK transport."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refused = await self._refusal(request)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)

    async def _refusal(self, request: Request) -> Response | None:
        key = presented_key(request)
        if key is None:
            return _unauthorized("Send the practice's API key in X-API-Key or as a Bearer token.")
        try:
            try:
                async with _transaction(request, writes=False) as session:
                    principal = key_principal(await authenticate_key(session, key))
            except NotAuthenticated as error:
                await charge_refused(request)  # a made-up key spends the IP's budget
                return _unauthorized(error.detail)
            await charge_verified(request, principal.rate_limit_key)
            request.scope[_PRINCIPAL] = principal
        except ClinicFlowError as error:
            return problem_response(
                error.status_code, error.title, error.detail, slug=error.slug,
                request=request, extra=error.extra, headers=error.headers,
            )  # fmt: skip
        return None


@asynccontextmanager
async def _transaction(request: Request, *, writes: bool) -> AsyncIterator[AsyncSession]:
    """The request session's rules (commit once, roll back on error); the work it leaves for
    after the commit (e-mails, webhooks) runs once it has committed. A write (a tool that
    books, moves, cancels or registers) takes SQLite's write lock up front, as a REST write
    does, so its checks see every committed booking; a read (the key check, `tools/list`, a
    read-only tool) does not, so it neither waits behind writers nor holds them up. On
    PostgreSQL both are an ordinary transaction."""
    database: Database = request.app.state.database
    pending: list[AfterCommit] = []
    async with unit_of_work(database, pending.append, writes=writes) as session:
        yield session
    for work in pending:
        await work()


def _caller(server: Server[Any, Request]) -> tuple[Request, Principal]:
    request = server.request_context.request
    assert request is not None, "called inside an MCP request"
    assert _PRINCIPAL in request.scope, "McpEndpoint authenticates first"
    principal: Principal = request.scope[_PRINCIPAL]
    return request, principal


def _tool_result(structured: dict[str, Any]) -> types.CallToolResult:
    """Structured content and its JSON text (for clients that read only text). Built from the
    pydantic model that also gives the tool's outputSchema, so it is valid by construction."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(structured, ensure_ascii=False))],
        structuredContent=structured,
    )


def _tool_error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], isError=True
    )


def _explain(error: ClinicFlowError) -> str:
    """The problem, for a language model: title, detail and the named facts (clash, slots)."""
    text = f"{error.title} ({error.status_code}): {error.detail}"
    if error.extra:
        text += "\n" + json.dumps(error.extra, default=str)
    return text


def _invalid_input(error: ValidationError) -> str:
    fields = "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'input'}: {e['msg']}" for e in error.errors()
    )
    return f"Invalid input: {fields}"


def _describe(tool: AgentTool, timezone: str) -> types.Tool:
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description.format(timezone=timezone),
        inputSchema=tool.input_model.model_json_schema(by_alias=True),
        outputSchema=tool.output_model.model_json_schema(mode="serialization"),
        annotations=types.ToolAnnotations(
            title=tool.title,
            readOnlyHint=not tool.writes,
            destructiveHint=tool.name == "cancel_appointment",
            idempotentHint=not tool.writes,
            openWorldHint=False,
        ),
    )


def _allowed(principal: Principal) -> list[AgentTool]:
    return [tool for tool in TOOLS if tool.permission in principal.permissions]


async def _run(
    request: Request, principal: Principal, tool: AgentTool, arguments: Any
) -> types.CallToolResult:
    """One tool call, one transaction in the key's tenant."""
    args = tool.input_model.model_validate(arguments)
    async with _transaction(request, writes=tool.writes) as session:
        await set_session_tenant(session, principal.require_tenant())
        tenant = await TenantRepository(session).get(principal.require_tenant())
        zone = ZoneInfo(tenant.timezone if tenant else "UTC")
        result = await tool.run(Call(session, principal, zone, request.app.state.outbox), args)
    return _tool_result(result.model_dump(mode="json"))


def build_server() -> Server[Any, Request]:
    server: Server[Any, Request] = Server("clinicflow", __version__, instructions=INSTRUCTIONS)

    async def list_tools() -> list[types.Tool]:
        request, principal = _caller(server)
        async with _transaction(request, writes=False) as session:
            await set_session_tenant(session, principal.require_tenant())
            tenant = await TenantRepository(session).get(principal.require_tenant())
        timezone = tenant.timezone if tenant else "UTC"
        return [_describe(tool, timezone) for tool in _allowed(principal)]

    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        request, principal = _caller(server)
        tool = TOOLS_BY_NAME.get(name)
        structlog.contextvars.bind_contextvars(mcp_tool=name)
        if tool is None or tool not in _allowed(principal):
            logger.info("mcp_tool_refused", reason="scope")
            needed = f" It needs the '{tool.permission.value}' scope." if tool else ""
            return _tool_error(f"No tool '{name}' is available to this API key.{needed}")
        try:
            authorize(principal, [tool.permission], writes=tool.writes)
            result = await _run(request, principal, tool, arguments)
        except ValidationError as error:
            return _tool_error(_invalid_input(error))
        except ClinicFlowError as error:
            logger.info("mcp_tool_failed", error=error.slug)
            return _tool_error(_explain(error))
        except Exception:  # never a stack trace or SQL to the client, as for REST's 500
            logger.exception("mcp_tool_crashed")
            meta = request_meta.get()
            return _tool_error(
                "An unexpected error occurred; it has been logged with request id "
                f"{meta.request_id if meta else 'unknown'}."
            )
        logger.info("mcp_tool_called")
        return result

    # The SDK's decorators are untyped; registering through them is all we need of them.
    server.list_tools()(list_tools)  # type: ignore[no-untyped-call]
    # Inputs are validated by the tool's pydantic model (the source of its inputSchema), once;
    # the SDK's jsonschema pass would re-check the schema itself on every call.
    server.call_tool(validate_input=False)(call_tool)
    return server


def build_mcp() -> tuple[McpEndpoint, Callable[[], AbstractAsyncContextManager[None]]]:
    """The endpoint to route at /mcp and what the app's lifespan must run around serving."""
    manager = StreamableHTTPSessionManager(build_server(), json_response=True, stateless=True)

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        """The manager's task group must be entered and left by one task; a lifespan may be
        left by another (test harnesses), so the manager gets a task of its own."""
        started, stop = asyncio.Event(), asyncio.Event()

        async def serve() -> None:
            async with manager.run():
                started.set()
                await stop.wait()

        task = asyncio.create_task(serve())
        await asyncio.wait(
            [task, asyncio.create_task(started.wait())], return_when="FIRST_COMPLETED"
        )
        if task.done():
            task.result()  # it failed to start: raise why
        try:
            yield
        finally:
            stop.set()
            await task

    return McpEndpoint(manager), running

"""Structured JSON logs (structlog) and the request-context middleware.

The middleware is plain ASGI (no BaseHTTPMiddleware overhead). It gives each request an id
(taken from `X-Request-ID` when it is sane), binds it to the log context, answers 413 for bodies
over the limit, adds security headers, and writes one access line.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinicflow.core.errors import PROBLEM_MEDIA_TYPE, unexpected_error_response
from clinicflow.core.metrics import observe

_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SENSITIVE_KEYS = frozenset(
    {"password", "token", "access_token", "refresh_token", "secret", "authorization", "content"}
)


@dataclass(frozen=True, slots=True)
class RequestMeta:
    request_id: str
    ip: str | None
    user_agent: str | None


request_meta: ContextVar[RequestMeta | None] = ContextVar("request_meta", default=None)
access_logger = structlog.get_logger("clinicflow.access")


def _add_pid(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Which server process wrote the line (`serve --workers N` runs several)."""
    event_dict["pid"] = os.getpid()
    return event_dict


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: never let a secret-looking key reach the log."""
    for key in event_dict.keys() & _SENSITIVE_KEYS:
        event_dict[key] = "[redacted]"
    return event_dict


def _renderer(json: bool) -> Any:
    return structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()


def uvicorn_log_config(level: str = "INFO", *, json: bool = True) -> dict[str, Any]:
    """uvicorn's own messages (start-up, worker deaths, errors outside the app) and any other
    standard-library logger, rendered by structlog like the app's own lines."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "structlog",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _renderer(json),
                ],
                "foreign_pre_chain": [
                    structlog.stdlib.add_logger_name,
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    _add_pid,
                    _redact,
                ],
            }
        },
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            # The app writes one access line per request itself, with the request id.
            "uvicorn.access": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    renderer = _renderer(json)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_pid,
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


_STRICT_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc load their assets from a CDN and run inline scripts.
_DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' cdn.jsdelivr.net fonts.googleapis.com; "
    b"img-src 'self' data: fastapi.tiangolo.com cdn.redoc.ly; "
    b"font-src 'self' fonts.gstatic.com; worker-src blob:; frame-ancestors 'none'"
)
DOCS_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def _security_headers(csp: str, production: bool, *, docs: bool) -> list[tuple[bytes, bytes]]:
    """`strict`: nothing may load anywhere (the docs pages cannot render). `relaxed`: the same
    for every answer but the docs pages, which may load Swagger UI / ReDoc from their CDN."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if csp == "strict" or (csp == "relaxed" and not docs):
        headers.append((b"content-security-policy", _STRICT_CSP))
    elif csp == "relaxed":
        headers.append((b"content-security-policy", _DOCS_CSP))
    if production:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, csp: str, production: bool) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.extra_headers = _security_headers(csp, production, docs=False)
        self.docs_headers = _security_headers(csp, production, docs=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        request_id = headers.get("x-request-id", "")
        if not _REQUEST_ID_PATTERN.match(request_id):
            request_id = uuid.uuid4().hex
        client = scope.get("client")
        meta = RequestMeta(request_id, client[0] if client else None, headers.get("user-agent"))
        token = request_meta.set(meta)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}
        extra_headers = self.docs_headers if scope["path"] in DOCS_PAGES else self.extra_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                    *extra_headers,
                ]
            await send(message)

        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await _too_large(send_with_headers, self.max_body_bytes)
            else:
                await self.app(scope, _limited(receive, self.max_body_bytes), send_with_headers)
        except BodyTooLarge:
            # Raised where a middleware (not a route) read the body, before any answer.
            if "started" in status_holder:
                raise
            await _too_large(send_with_headers, self.max_body_bytes)
        except Exception as error:
            # A bug: answered here rather than by Starlette's outermost handler, so the 500
            # carries the request's id and the security headers as every response does.
            if "started" in status_holder:
                raise
            response = await unexpected_error_response(Request(scope), error)
            await response(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            observe(scope, status_holder["status"], elapsed)
            access_logger.info(
                "request",
                method=scope["method"],
                path=_loggable_path(scope),
                status=status_holder["status"],
                duration_ms=round(elapsed * 1000, 2),
            )
            request_meta.reset(token)


def _loggable_path(scope: Scope) -> str:
    """The path, with secrets that travel in it (invitation and other link tokens) masked."""
    path: str = scope["path"]
    for name, value in (scope.get("path_params") or {}).items():
        if "token" in name and isinstance(value, str) and value:
            path = path.replace(value, "[redacted]")
    return path


class BodyTooLarge(HTTPException):
    """A streamed body (no Content-Length) passed the limit. Inside a route FastAPI renders it
    as any HTTPException; read by a middleware, RequestContextMiddleware answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes.")


def _limited(receive: Receive, limit: int) -> Receive:
    """Counts streamed body bytes, for clients that send no Content-Length."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


async def _too_large(send: Send, limit: int) -> None:
    body = (
        '{"type":"urn:clinicflow:problem:request-body-too-large","title":"Request body too large",'
        f'"status":413,"detail":"The request body exceeds {limit} bytes."}}'
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""One error hierarchy, rendered as RFC 9457 problem+json by one set of handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from clinicflow.core.crypto import DecryptionError, MissingKeyError

PROBLEM_MEDIA_TYPE = "application/problem+json"
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_HTTP_TITLES = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}
# The kinds of problem the framework answers itself; the hierarchy below names the rest.
HTTP_PROBLEMS = {
    **{status: title.lower().replace(" ", "-") for status, title in _HTTP_TITLES.items()},
    422: "validation-failed",
    500: "internal-error",
}
logger = structlog.get_logger("clinicflow.errors")


class ClinicFlowError(Exception):
    """Base of every error the API answers on purpose; each subclass carries its status."""

    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"
    slug: ClassVar[str] = "internal-error"
    # True when the work done before the error must still be committed (a failed login's
    # counter, a reused refresh token's revoked family); the request session honours it.
    commit_changes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(ClinicFlowError):
    status_code = 400
    title = "Bad request"
    slug = "bad-request"


class NotAuthenticated(ClinicFlowError):
    status_code = 401
    title = "Not authenticated"
    slug = "not-authenticated"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class PermissionDenied(ClinicFlowError):
    status_code = 403
    title = "Permission denied"
    slug = "permission-denied"


class NotFound(ClinicFlowError):
    status_code = 404
    title = "Not found"
    slug = "not-found"


class ReferenceNotFound(NotFound):
    """The body names a resource (a patient_id, an appointment_id…) this practice does not
    have: 404 like the resource's own URL would answer, with the field named."""

    title = "Referenced resource not found"
    slug = "reference-not-found"

    def __init__(self, field: str, detail: str) -> None:
        error = {
            "field": field,
            "location": ["body", field],
            "message": detail,
            "type": "not_found",
        }
        super().__init__(detail, extra={"errors": [{**error, "type": "not_found"}]})


class UnknownCursor(NotFound):
    """A cursor that names no page of this list: malformed, forged, or from another list. The
    URL with its cursor identifies a page, and there is no such page (hence 404, not 400)."""

    title = "No such page"
    slug = "unknown-cursor"


class Conflict(ClinicFlowError):
    status_code = 409
    title = "Conflict"
    slug = "conflict"


class ValidationFailed(ClinicFlowError):
    """A business-rule validation failure, shaped like FastAPI's 422 field errors."""

    status_code = 422
    title = "Validation failed"
    slug = "validation-failed"

    def __init__(self, detail: str, *, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail, extra={"errors": [dict(error) for error in errors]})

    @classmethod
    def for_field(cls, field: str, message: str, kind: str = "invalid") -> ValidationFailed:
        return cls(message, errors=[{"field": field, "message": message, "type": kind}])


READ_ONLY_DETAIL = (
    "This practice is in read-only mode; changes are disabled until the platform operator lifts it."
)


class TenantReadOnly(ClinicFlowError):
    status_code = 423
    title = "Tenant is read-only"
    slug = "tenant-read-only"


class ServiceUnavailable(ClinicFlowError):
    status_code = 503
    title = "Service unavailable"
    slug = "service-unavailable"


# An API area speaking another error format (FHIR's OperationOutcome) renders the same errors
# its own way: (status, detail, headers) -> response, chosen by path prefix.
ProblemRenderer = Callable[[int, str, Mapping[str, str] | None], Response]
_RENDERERS: dict[str, ProblemRenderer] = {}


def render_problems_under(path_prefix: str, renderer: ProblemRenderer) -> None:
    _RENDERERS[path_prefix] = renderer


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    request: Request | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    if request is not None:
        for prefix, renderer in _RENDERERS.items():
            if request.url.path.startswith(prefix):
                return renderer(status, detail, headers)
    body: dict[str, Any] = {
        "type": f"urn:clinicflow:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's errors without `input`/`ctx`: they may echo secrets and are not JSON-safe."""
    errors = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        entry: dict[str, Any] = {
            "field": ".".join(location[1:]) if len(location) > 1 else ".".join(location),
            "location": location,
            "message": str(error.get("msg", "Invalid value"))[:300],
            "type": error.get("type", "value_error"),
        }
        if entry["type"] == "json_invalid":
            # Pydantic puts the byte offset where a field name goes: report it as a position.
            offset = location[1] if len(location) > 1 else None
            entry.update(field="body", location=["body"])
            entry["position"] = int(offset) if offset is not None and offset.isdigit() else None
        errors.append(entry)
    return errors


async def _handle_clinicflow_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClinicFlowError)
    if exc.status_code >= 500:
        logger.error("request_failed", error=exc.slug, detail=exc.detail)
    return problem_response(
        exc.status_code,
        exc.title,
        exc.detail,
        slug=exc.slug,
        request=request,
        extra=exc.extra,
        headers=exc.headers,
    )


MAX_REPORTED_ERRORS = 20


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # A large malformed body can fail on every element: report the first ones, and how many
    # there were, instead of an answer many times the size of the request.
    every_error = _field_errors(exc)
    errors = every_error[:MAX_REPORTED_ERRORS]
    if any(error["type"] == "json_invalid" for error in errors):
        detail = "The request body is not valid JSON."
    else:
        detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors[:5])
    return problem_response(
        422, "Validation failed", detail, slug="validation-failed", request=request,
        extra={"errors": errors, "error_count": len(every_error)},
    )  # fmt: skip


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = _HTTP_TITLES.get(exc.status_code, "HTTP error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route matches {request.method} {request.url.path}."
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not allowed here; this path accepts {', '.join(allowed)}."
    return problem_response(
        exc.status_code,
        title,
        detail,
        slug=HTTP_PROBLEMS.get(exc.status_code, "http-error"),
        request=request,
        headers=headers,
    )


def _allowed_methods(request: Request) -> list[str]:
    """Starlette names only the first route whose path matched, while a path is often served
    by several routes (GET and POST /patients): ask the router which methods fully match."""
    allowed = []
    for method in _HTTP_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _handle_integrity_error(request: Request, exc: Exception) -> Response:
    """A constraint the services did not foresee (two requests creating the same thing at
    once): the request changed nothing, and the client may retry or pick another value."""
    logger.warning("integrity_error", error_type=type(getattr(exc, "orig", exc)).__name__)
    return problem_response(
        409, "Conflict", "The request conflicts with data stored meanwhile; nothing was changed.",
        slug="conflict", request=request,
    )  # fmt: skip


async def _handle_data_error(request: Request, exc: Exception) -> Response:
    """A value the database cannot hold (out of range, too long) that validation let through."""
    logger.warning("data_error", error_type=type(getattr(exc, "orig", exc)).__name__)
    return problem_response(
        422, "Validation failed", "A value is out of the range the database can store.",
        slug="validation-failed", request=request,
    )  # fmt: skip


async def _handle_pool_timeout(request: Request, exc: Exception) -> Response:
    """Every database connection of this process stayed busy for DATABASE_POOL_TIMEOUT_SECONDS
    (a burst, long exports): the server is overloaded, not broken, and nothing was changed."""
    logger.warning("database_pool_exhausted")
    return problem_response(
        503, "Service unavailable",
        "The server is busy: no database connection came free in time. Nothing was changed; "
        "retry shortly.",
        slug="service-unavailable", request=request, headers={"Retry-After": "1"},
    )  # fmt: skip


async def _handle_database_unreachable(request: Request, exc: Exception) -> Response:
    """The database refused or dropped the connection (down, restarting, not accepting
    connections): the request changed nothing and may be retried; not the client's fault and
    not a bug. A driver error on a working connection is still a 500."""
    if isinstance(exc, DBAPIError) and not _connection_failed(exc):
        return await unexpected_error_response(request, exc)
    logger.error("database_unreachable", error_type=type(exc).__name__, error=str(exc)[:200])
    return problem_response(
        503, "Service unavailable",
        "The database cannot be reached right now. Nothing was changed; retry shortly.",
        slug="service-unavailable", request=request, headers={"Retry-After": "5"},
    )  # fmt: skip


def _connection_failed(exc: DBAPIError) -> bool:
    """No statement (the connect itself failed), a connection SQLAlchemy invalidated, or a
    PostgreSQL connection-exception (08) or operator-intervention (57P) state."""
    state = str(getattr(exc.orig, "sqlstate", "") or "")
    return exc.statement is None or exc.connection_invalidated or state.startswith(("08", "57P"))


async def _handle_missing_key(request: Request, exc: Exception) -> Response:
    """Data sealed with a key this server lacks (a server started with the old list, or one
    dropped too early), wherever a service opens it without naming the key itself (the n8n
    API key): a configuration problem the operator fixes, not a bug."""
    assert isinstance(exc, MissingKeyError)
    logger.error("encryption_key_missing", missing_key_id=exc.key_id)
    return problem_response(
        503, "Service unavailable",
        f"Data needed here is sealed with encryption key {exc.key_id!r}, which this server does "
        "not have: the operator must add it to ENCRYPTION_KEYS and restart.",
        slug="service-unavailable", request=request, extra={"missing_key_id": exc.key_id},
    )  # fmt: skip


async def _handle_undecryptable(request: Request, exc: Exception) -> Response:
    """Data sealed at rest that no longer authenticates (altered or corrupted in the database)
    wherever a service opens it without handling it itself (the n8n API key): not the
    client's mistake, and nothing a retry fixes, but no 500 either."""
    logger.error("sealed_data_unreadable", error=str(exc))
    return problem_response(
        503, "Service unavailable",
        "Data needed here cannot be decrypted (it was altered or corrupted where it is stored); "
        "the operator has been told. If it is the practice's n8n connection, connect it again.",
        slug="service-unavailable", request=request,
    )  # fmt: skip


async def unexpected_error_response(request: Request, exc: Exception) -> Response:
    """A bug's answer: logged with the traceback, a 500 problem that tells nothing of it."""
    logger.exception("unhandled_error", error_type=type(exc).__name__)
    return problem_response(
        500,
        "Internal server error",
        "An unexpected error occurred; it has been logged with this request's id.",
        slug="internal-error",
        request=request,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClinicFlowError, _handle_clinicflow_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(IntegrityError, _handle_integrity_error)
    app.add_exception_handler(DataError, _handle_data_error)
    app.add_exception_handler(PoolTimeout, _handle_pool_timeout)
    # A refused connect arrives from the driver as the OS's ConnectionError, not wrapped.
    app.add_exception_handler(ConnectionError, _handle_database_unreachable)
    app.add_exception_handler(DBAPIError, _handle_database_unreachable)
    app.add_exception_handler(MissingKeyError, _handle_missing_key)
    app.add_exception_handler(DecryptionError, _handle_undecryptable)
    # RequestContextMiddleware answers these first (with the request's id and security
    # headers); this covers an error raised outside it.
    app.add_exception_handler(Exception, unexpected_error_response)


class PlanLimitExceeded(ClinicFlowError):
    """The practice's plan does not allow more of something; the detail names the limit."""

    status_code = 402
    title = "Plan limit reached"
    slug = "plan-limit-exceeded"

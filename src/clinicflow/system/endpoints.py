"""Service root, liveness and readiness."""

from __future__ import annotations

import hmac
import os
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from clinicflow import __version__
from clinicflow.core.errors import NotAuthenticated
from clinicflow.core.migrate import schema_check
from clinicflow.core.openapi import problems
from clinicflow.core.settings import Settings

router = APIRouter(tags=["system"])


@router.get("/", summary="Get the service name and version")
async def root(request: Request) -> dict[str, str | None]:
    """Public. The service name, version, and where the interactive docs (null where they are
    not served, as in production by default) and the OpenAPI document are."""
    return {
        "name": "ClinicFlow",
        "version": __version__,
        "docs": "/docs" if request.app.state.settings.serves_docs else None,
        "openapi": "/api/v1/openapi.json",
    }


@router.get("/openapi.json", include_in_schema=False)
async def openapi_at_the_root() -> RedirectResponse:
    """Clients and tools often look for the document at the root."""
    return RedirectResponse("/api/v1/openapi.json", status_code=308)


@router.get("/health", summary="Check liveness")
@router.head("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    """Public. Answers 200 `{"status": "ok"}` while the process serves requests; it does not
    check the database (see /health/ready). HEAD works too."""
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Check readiness",
    responses={
        503: {
            "description": "The database does not answer, or its schema is behind this "
            "version (run `clinicflow db upgrade`)."
        }
    },
)
async def ready(request: Request) -> Response:
    """Public. 200 when the database answers with the schema this version needs (migrated by
    `clinicflow db upgrade`); 503 otherwise. Redis, when configured, is checked too: without it
    the API still serves (rate limits count per process until it is back), so an outage is
    `"status": "degraded"` with 200, and a load balancer keeps every instance. Outside
    production, or with the metrics token, the body adds each check, the version, environment
    and time."""
    settings = request.app.state.settings
    checks: dict[str, Any] = {"database": await _check_database(request)}
    if settings.redis_url:
        checks["redis"] = await _check_redis(settings.redis_url)
    healthy = checks["database"] == "ok"
    status = "ok" if all(value == "ok" for value in checks.values()) else "degraded"
    status = status if healthy else "unavailable"
    if not _may_see_details(request):  # production: what is up or down is for the operator
        return JSONResponse({"status": status}, status_code=200 if healthy else 503)
    body = {
        "status": status,
        "checks": checks,
        "version": __version__,
        "environment": settings.environment,
        "time": datetime.now(UTC).isoformat(),
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def _check_database(request: Request) -> str:
    """Reachable, and migrated as far as this code needs: a process started before
    `clinicflow db upgrade` ran takes no traffic (its writes would fail)."""
    try:
        async with request.app.state.database.engine.connect() as connection:
            revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception as error:  # any driver failure means "not ready", never a 500
        return f"error: {type(error).__name__}"
    return schema_check(revision)


async def _check_redis(url: str) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    except Exception as error:  # unreachable Redis is reported, not raised
        return f"error: {type(error).__name__}"
    finally:
        await client.aclose()
    return "ok"


@router.get(
    "/metrics",
    summary="Get Prometheus metrics",
    response_class=PlainTextResponse,
    responses=problems(NotAuthenticated),
)
async def metrics(request: Request) -> Response:
    """Prometheus text format, aggregated over the workers. When METRICS_TOKEN is set it must be
    sent as a bearer token (401 otherwise); production without a token keeps it closed."""
    _check_metrics_token(request)
    registry = REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # several workers: aggregate their files
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _may_see_details(request: Request) -> bool:
    """Readiness details (versions, which dependency is down) outside production, or for a
    caller with the metrics token."""
    settings: Settings = request.app.state.settings
    if settings.environment != "production":
        return True
    try:
        _check_metrics_token(request)
    except NotAuthenticated:
        return False
    return True


def _check_metrics_token(request: Request) -> None:
    """With METRICS_TOKEN set, scrapers send it as a bearer token; production without one keeps
    /metrics closed, since route names and volumes describe the practices' activity."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        if settings.environment == "production":
            raise NotAuthenticated("Metrics need METRICS_TOKEN to be configured in production.")
        return
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, expected):
        raise NotAuthenticated("Metrics need the METRICS_TOKEN bearer token.")

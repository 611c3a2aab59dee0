"""Service root, liveness and readiness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from clinicflow import __version__

router = APIRouter(tags=["system"])


@router.get("/", summary="Service name, version and documentation links")
async def root() -> dict[str, str]:
    return {
        "name": "ClinicFlow",
        "version": __version__,
        "docs": "/docs",
        "openapi": "/api/v1/openapi.json",
    }


@router.get("/health", summary="Liveness")
@router.head("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: database (and Redis when configured)")
async def ready(request: Request) -> Response:
    settings = request.app.state.settings
    checks: dict[str, Any] = {"database": await _check_database(request)}
    if settings.redis_url:
        checks["redis"] = await _check_redis(settings.redis_url)
    healthy = all(value == "ok" for value in checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": checks,
        "version": __version__,
        "environment": settings.environment,
        "time": datetime.now(UTC).isoformat(),
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def _check_database(request: Request) -> str:
    try:
        async with request.app.state.database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # any driver failure means "not ready", never a 500
        return f"error: {type(error).__name__}"
    return "ok"


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

"""Application factory."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from clinicflow import __version__
from clinicflow.agents.endpoints import PATH as MCP_PATH
from clinicflow.agents.endpoints import build_mcp
from clinicflow.apikeys.endpoints import router as api_keys_router
from clinicflow.appointments.endpoints import availability_router
from clinicflow.appointments.endpoints import router as appointments_router
from clinicflow.audit.endpoints import router as audit_router
from clinicflow.auth.endpoints import router as auth_router
from clinicflow.bootstrap import calibrate_failed_logins, ensure_first_admin
from clinicflow.calendar.endpoints import router as calendar_router
from clinicflow.core import dependencies
from clinicflow.core.crypto import KeyRing
from clinicflow.core.database import UnitOfWorkRoute, create_database
from clinicflow.core.errors import install_error_handlers, render_problems_under
from clinicflow.core.input_guard import RejectControlCharacters
from clinicflow.core.logging import RequestContextMiddleware, configure_logging
from clinicflow.core.openapi import install_openapi
from clinicflow.core.ratelimit import RateLimiter, default_rate_limit
from clinicflow.core.routing import match_ids_as_uuids
from clinicflow.core.security import hasher_for
from clinicflow.core.settings import Settings, get_settings
from clinicflow.exports.endpoints import portability_router
from clinicflow.exports.endpoints import router as exports_router
from clinicflow.fhir.endpoints import outcome_response
from clinicflow.fhir.endpoints import router as fhir_router
from clinicflow.finance.endpoints import router as finance_router
from clinicflow.integrations.cache import metrics_cache
from clinicflow.integrations.endpoints import router as integrations_router
from clinicflow.invitations.endpoints import router as invitations_router
from clinicflow.notifications.delivery import mailer_from_settings
from clinicflow.notifications.endpoints import router as notifications_router
from clinicflow.notifications.outbox import Outbox, Worker
from clinicflow.patients.endpoints import router as patients_router
from clinicflow.records.endpoints import router as records_router
from clinicflow.system.endpoints import router as system_router
from clinicflow.tenants.admin_endpoints import router as platform_router
from clinicflow.tenants.endpoints import router as tenant_router
from clinicflow.users.endpoints import router as users_router
from clinicflow.webhooks.endpoints import router as webhooks_router

API_PREFIX = "/api/v1"
# Every router under API_PREFIX (each made with `route_class=UnitOfWorkRoute`). The busiest
# first: a request is matched against each router's routes in turn (measured in-process: 3.5%
# of a list request's CPU, 11% of an agenda page's, with these three sixth to eighth). The
# prefixes are disjoint, so the order decides nothing else.
API_ROUTERS = (
    patients_router,
    appointments_router,
    availability_router,
    auth_router,
    users_router,
    tenant_router,
    invitations_router,
    audit_router,
    api_keys_router,
    records_router,
    finance_router,
    integrations_router,
    exports_router,
    portability_router,
    fhir_router,
    calendar_router,
    platform_router,
    notifications_router,
    webhooks_router,
)


@asynccontextmanager
async def in_process_worker(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """On the embedded SQLite default the server delivers its own messages, so `make run`
    needs no second process; with PostgreSQL, `clinicflow worker` processes do it."""
    if not settings.runs_worker_in_process:
        yield
        return
    worker = Worker(app.state.database.sessionmaker, app.state.key_ring, app.state.mailer, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    dependencies.install()

    mcp_endpoint, mcp_running = build_mcp()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = create_database(settings)
        await ensure_first_admin(app.state.database, settings)
        await calibrate_failed_logins(app.state.database, app.state.password_hasher)
        async with in_process_worker(app, settings):
            try:
                async with mcp_running():
                    # What start-up built lives as long as the process: out of the collector's
                    # sight, so full collections stay short (they were the p99 of reads).
                    gc.freeze()
                    yield
            finally:
                await app.state.database.dispose()

    app = FastAPI(
        title="ClinicFlow",
        version=__version__,
        description="Multi-tenant backend API for health practices.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs" if settings.serves_docs else None,
        redoc_url="/redoc" if settings.serves_docs else None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.router.route_class = UnitOfWorkRoute  # routes added on the app itself too
    app.state.password_hasher = hasher_for(settings)
    app.state.mailer = mailer_from_settings(settings)
    app.state.rate_limiter = RateLimiter(settings)
    app.state.key_ring = KeyRing.from_setting(settings.encryption_keys.get_secret_value())
    app.state.outbox = Outbox(app.state.key_ring, settings)
    app.state.metrics_cache = metrics_cache(settings)
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(RejectControlCharacters)  # innermost: sees every input before a route
    render_problems_under(f"{API_PREFIX}/fhir/", outcome_response)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        csp=settings.csp,
        production=settings.environment == "production",
    )
    if settings.trusted_proxies:
        # Outermost, so the access log, rate limits, sessions and audit all see the real client.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.include_router(system_router)
    # The AI receptionist (SPEC §3 "AI agents"): not an OpenAPI route; it speaks MCP. SPEC
    # names it `/mcp` among the /api/v1 routes, so it answers under that prefix as well.
    for path in (MCP_PATH, f"{API_PREFIX}{MCP_PATH}"):
        app.router.routes.append(
            Route(path, mcp_endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
        )
    for router in API_ROUTERS:
        app.include_router(
            match_ids_as_uuids(router),
            prefix=API_PREFIX,
            dependencies=[Depends(default_rate_limit)],
        )
    return app

"""/integrations/n8n and the automation metrics: the practice's own and, for the platform
admin, every practice's (SPEC §3 "Automation metrics")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import NotFound
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import (
    PageParams,
    cursor_fields,
    encode_cursor,
    page_of_list,
    page_params,
)
from clinicflow.core.tenancy import tenant_context
from clinicflow.core.types import Instant
from clinicflow.integrations.n8n_client import N8nTimeout, N8nUnavailable
from clinicflow.integrations.schemas import (
    N8nConnect,
    N8nConnectionRead,
    PracticeMetrics,
    TenantMetricsList,
    WorkflowMetricsList,
)
from clinicflow.integrations.service import Figures, N8nService, Period
from clinicflow.tenants.repository import TenantRepository

router = APIRouter(route_class=UnitOfWorkRoute, tags=["automation metrics"])
Manager = Annotated[Principal, Depends(require(Permission.INTEGRATIONS_MANAGE))]
Reader = Annotated[Principal, Depends(require(Permission.METRICS_READ))]
Platform = Annotated[Principal, Depends(require(Permission.PLATFORM_METRICS))]
From = Annotated[Instant | None, Query(alias="from", description="Default: 30 days ago")]
To = Annotated[Instant | None, Query(alias="to", description="Default: now")]
Refresh = Annotated[bool, Query(description="Skip the cache and ask n8n now")]
N8N_ERRORS = problems(N8nUnavailable, N8nTimeout, NotFound)
MAX_PERIOD = timedelta(days=366)


async def _service(request: Request, session: SessionDep) -> N8nService:
    state = request.app.state
    return N8nService(session, state.key_ring, state.metrics_cache, state.settings)


Service = Annotated[N8nService, Depends(_service)]


def _period(start: datetime | None, end: datetime | None) -> Period:
    label = "last-30-days" if start is None and end is None else None
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=30)
    # A longer period is cut to the 366 days ending at `to`, an inverted one is empty; the
    # response's `period` says which was used.
    start = min(max(start, end - MAX_PERIOD), end)
    return Period(start, end, label or f"{start.isoformat()}/{end.isoformat()}")


def _practice_metrics(tenant_id: uuid.UUID, period: Period, figures: Figures) -> PracticeMetrics:
    return PracticeMetrics(
        tenant_id=tenant_id, start=period.start, end=period.end, totals=figures.totals,
        cached=figures.cached, truncated=figures.truncated,
        executions_read=figures.executions_read,
    )  # fmt: skip


def _workflow_metrics(
    tenant_id: uuid.UUID, figures: Figures, page: PageParams
) -> WorkflowMetricsList:
    workflows, next_cursor = page_of_list(
        figures.workflows, page, lambda workflow: (workflow.workflow_id,), fields=1
    )
    return WorkflowMetricsList(
        tenant_id=tenant_id, items=workflows, next_cursor=next_cursor, cached=figures.cached,
        truncated=figures.truncated, executions_read=figures.executions_read,
    )  # fmt: skip


@router.put(
    "/integrations/n8n",
    summary="Connect the practice's n8n instance",
    responses=problems(NotFound, N8nUnavailable, N8nTimeout),
)
async def connect_n8n(body: N8nConnect, principal: Manager, service: Service) -> N8nConnectionRead:
    """Owner only. Saves the n8n instance root and API key after checking them against n8n's
    public API now (502 naming the problem when n8n cannot be reached or refuses the key, 504
    when it is too slow; nothing is saved then). In production a base URL resolving to a
    private, loopback, link-local or metadata address is refused (422), as for webhooks. The
    key is stored encrypted and never returned. Replaces an earlier connection. 423 when read-
    only. Audited as integration.n8n_connected."""
    connection = await service.connect(body, principal.actor)
    return N8nConnectionRead(
        configured=True, base_url=connection.base_url, updated_at=connection.updated_at
    )


@router.get("/integrations/n8n", summary="Get the n8n connection")
async def read_n8n(principal: Manager, service: Service) -> N8nConnectionRead:
    """Owner only. Whether n8n is connected, its base URL and when it was last changed; never the
    API key."""
    connection = await service.connection()
    if connection is None:
        return N8nConnectionRead(configured=False)
    return N8nConnectionRead(
        configured=True, base_url=connection.base_url, updated_at=connection.updated_at
    )


@router.delete(
    "/integrations/n8n",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disconnect n8n",
    responses=problems(NotFound),
)
async def disconnect_n8n(principal: Manager, service: Service) -> None:
    """Owner only. Forgets the n8n connection and its stored key. 404 when none is configured;
    423 when read-only. Answers 204; audited as integration.n8n_disconnected."""
    await service.disconnect(principal.actor)


@router.get("/metrics/me", summary="Get your practice's automation metrics", responses=N8N_ERRORS)
async def my_metrics(
    principal: Reader,
    service: Service,
    start: From = None,
    end: To = None,
    refresh: Refresh = False,
) -> PracticeMetrics:
    """Owner, assistant or viewer, or an API key with `metrics:read`. Totals over the period
    (`from`/`to`, default the last 30 days, at most 366): executions, successes, errors,
    rates, average and p95 duration, last run, read from the practice's n8n and cached
    (`refresh=true` skips the cache). At most the period's newest 10,000 executions are read:
    `truncated` says when there were more, `executions_read` how many were read. 404 when n8n
    is not connected; 502/504 when n8n is unreachable or slow."""
    period = _period(start, end)
    figures = await service.workflow_metrics(period, refresh=refresh)
    return _practice_metrics(principal.require_tenant(), period, figures)


@router.get(
    "/metrics/me/workflows",
    summary="Get your practice's automation metrics per workflow",
    responses=N8N_ERRORS,
)
async def my_workflow_metrics(
    principal: Reader,
    service: Service,
    page: Annotated[PageParams, Depends(page_params)],
    start: From = None,
    end: To = None,
    refresh: Refresh = False,
) -> WorkflowMetricsList:
    """Owner, assistant or viewer, or an API key with `metrics:read`. The same figures as
    /metrics/me, one item per n8n workflow in workflow id order, `limit` at a time (follow
    `next_cursor`), over the period (`from`/`to`, default the last 30 days). 404 when n8n is
    not connected; 502/504 when n8n is unreachable or slow."""
    figures = await service.workflow_metrics(_period(start, end), refresh=refresh)
    return _workflow_metrics(principal.require_tenant(), figures, page)


@router.get("/metrics/tenants", summary="Get every practice's automation metrics")
async def tenants_metrics(
    admin: Platform, service: Service, session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)], start: From = None, end: To = None,
    refresh: Refresh = False,
) -> TenantMetricsList:  # fmt: skip
    """Platform admin only. Totals per practice that has n8n connected, over the period
    (`from`/`to`, default the last 30 days), a page of practices at a time: `limit` practices
    are looked at (those without n8n are skipped, so a page may hold fewer items); follow
    `next_cursor`. Practices whose n8n could not be read (unreachable, slow, a malformed answer,
    or an API key this server cannot decrypt) are listed in `unavailable` with the reason
    instead of failing the whole answer."""
    period = _period(start, end)
    after = cursor_fields(page.cursor, uuid.UUID)
    tenant_ids = await TenantRepository(session).live_ids_page(
        page.limit, after[0] if after else None
    )
    more, tenant_ids = len(tenant_ids) > page.limit, tenant_ids[: page.limit]
    readable, unavailable = await service.every_practice_metrics(
        tenant_ids, period, refresh=refresh
    )
    return TenantMetricsList(
        items=[_practice_metrics(tenant_id, period, figures) for tenant_id, figures in readable],
        unavailable=unavailable,
        next_cursor=encode_cursor([str(tenant_ids[-1])]) if more else None,
    )


async def _practice(session: SessionDep, tenant_id: uuid.UUID) -> uuid.UUID:
    if await TenantRepository(session).get(tenant_id) is None:
        raise NotFound("No practice with this id.")
    return tenant_id


@router.get(
    "/metrics/tenants/{tenant_id}",
    summary="Get one practice's automation metrics",
    responses=N8N_ERRORS,
)
async def tenant_metrics(
    tenant_id: uuid.UUID, admin: Platform, service: Service, session: SessionDep,
    start: From = None, end: To = None, refresh: Refresh = False,
) -> PracticeMetrics:  # fmt: skip
    """Platform admin only. A practice's automation totals over the period (`from`/`to`, default
    the last 30 days). 404 for an unknown practice or one without n8n; 502/504 when its n8n is
    unreachable or slow."""
    period = _period(start, end)
    async with tenant_context(session, await _practice(session, tenant_id)):
        figures = await service.workflow_metrics(period, refresh=refresh)
    return _practice_metrics(tenant_id, period, figures)


@router.get(
    "/metrics/tenants/{tenant_id}/workflows",
    summary="Get one practice's automation metrics per workflow",
    responses=N8N_ERRORS,
)
async def tenant_workflow_metrics(
    tenant_id: uuid.UUID, admin: Platform, service: Service, session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)], start: From = None, end: To = None,
    refresh: Refresh = False,
) -> WorkflowMetricsList:  # fmt: skip
    """Platform admin only. A practice's figures per n8n workflow over the period, in workflow
    id order, `limit` at a time (follow `next_cursor`). 404 for an unknown practice or one
    without n8n; 502/504 when its n8n is unreachable or slow."""
    async with tenant_context(session, await _practice(session, tenant_id)):
        figures = await service.workflow_metrics(_period(start, end), refresh=refresh)
    return _workflow_metrics(tenant_id, figures, page)

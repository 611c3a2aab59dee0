"""Request and response bodies of /integrations/n8n and the automation metrics (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class N8nConnect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(description="The instance root, e.g. https://n8n.acme.com")
    api_key: str = Field(min_length=8, max_length=4096, description="n8n > Settings > API")


class N8nConnectionRead(BaseModel):
    """Never the key."""

    configured: bool
    base_url: str | None = None
    updated_at: datetime | None = None


class WorkflowMetrics(BaseModel):
    workflow_id: str
    name: str
    executions: int
    success: int
    error: int
    other: int = Field(description="Neither success nor error: canceled, waiting, running...")
    success_rate: float | None = Field(description="success / executions; null without any")
    error_rate: float | None
    average_duration_ms: float | None = Field(description="Over executions that stopped")
    p95_duration_ms: float | None
    last_run_at: datetime | None


class PracticeMetrics(BaseModel):
    tenant_id: uuid.UUID
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    totals: WorkflowMetrics
    cached: bool = Field(description="Served from the cache (refresh=true fetches anew)")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class WorkflowMetricsList(BaseModel):
    tenant_id: uuid.UUID
    items: list[WorkflowMetrics]
    cached: bool


class TenantMetricsList(BaseModel):
    items: list[PracticeMetrics]
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="Practices whose n8n could not be read, and why"
    )

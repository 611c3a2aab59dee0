"""Request and response bodies of /integrations/n8n and the automation metrics (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictBool, field_validator

from clinicflow.core.pagination import NEXT_CURSOR


class N8nConnect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(
        description="The n8n instance root, e.g. https://n8n.acme.com (a trailing /api/v1 is "
        "accepted). No user name or password in it: n8n's API takes the API key.",
        examples=["https://n8n.acme.com"],
    )
    api_key: str = Field(
        min_length=8,
        max_length=4096,
        # Sent as an HTTP header: printable ASCII only (anything else could not be sent at all).
        pattern=r"^[!-~]+$",
        description="An n8n API key (n8n > Settings > n8n API); stored encrypted, never returned.",
        examples=["n8n_api_0123456789abcdef"],
    )

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, url: HttpUrl) -> HttpUrl:
        # The base URL is shown by GET /integrations/n8n and written into the audit trail, so a
        # password in it would be kept in clear, and forever; n8n's API authenticates with the
        # X-N8N-API-KEY header, which is stored encrypted.
        if url.username or url.password:
            raise ValueError(
                "must not contain a user name or password (user:password@); n8n's API "
                "authenticates with api_key"
            )
        return url


class N8nConnectionRead(BaseModel):
    """Never the key."""

    configured: StrictBool = Field(description="Whether an n8n connection is saved.")
    base_url: str | None = Field(default=None, description="The n8n API root in use.")
    updated_at: datetime | None = Field(
        default=None, description="When the connection was last saved."
    )


class WorkflowMetrics(BaseModel):
    workflow_id: str = Field(description="The n8n workflow id (`*` in practice totals).")
    name: str = Field(description="The workflow's name in n8n.")
    executions: int = Field(description="Executions started in the period.")
    success: int = Field(description="Executions that succeeded.")
    error: int = Field(description="Executions that failed.")
    other: int = Field(description="Neither success nor error: canceled, waiting, running...")
    success_rate: float | None = Field(description="success / executions; null without any")
    error_rate: float | None = Field(description="error / executions; null without any.")
    average_duration_ms: float | None = Field(description="Over executions that stopped")
    p95_duration_ms: float | None = Field(
        description="95th percentile duration of stopped executions, in milliseconds."
    )
    last_run_at: datetime | None = Field(description="When the latest execution started.")


_TRUNCATED = (
    "True when the period holds more executions than one reading of n8n takes (the newest "
    "10,000): the figures then cover only those newest executions, so counts are too low and "
    "rates describe the latest part of the period. A shorter period gives complete figures."
)
_EXECUTIONS_READ = (
    "How many executions were read from n8n for these figures (at most 10,000; executions "
    "after the period or not started yet included)."
)


class PracticeMetrics(BaseModel):
    tenant_id: uuid.UUID = Field(description="The practice.")
    start: datetime = Field(alias="from", description="Period start.")
    end: datetime = Field(alias="to", description="Period end.")
    totals: WorkflowMetrics = Field(description="The figures over all the practice's workflows.")
    cached: StrictBool = Field(description="Served from the cache (refresh=true fetches anew)")
    truncated: StrictBool = Field(description=_TRUNCATED)
    executions_read: int = Field(ge=0, description=_EXECUTIONS_READ)

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class WorkflowMetricsList(BaseModel):
    tenant_id: uuid.UUID = Field(description="The practice.")
    items: list[WorkflowMetrics] = Field(
        description="One item per workflow, by workflow id (a page of them)."
    )
    next_cursor: str | None = Field(default=None, description=NEXT_CURSOR)
    cached: StrictBool = Field(description="Served from the cache (refresh=true fetches anew).")
    truncated: StrictBool = Field(description=_TRUNCATED)
    executions_read: int = Field(ge=0, description=_EXECUTIONS_READ)


class TenantMetricsList(BaseModel):
    items: list[PracticeMetrics] = Field(
        description="One item per practice with n8n connected and readable."
    )
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="Practices whose n8n could not be read, and why"
    )
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next practices; null at the end."
    )

"""n8n connection and automation metrics of a practice."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.core.crypto import (
    Ciphertext,
    DecryptionError,
    KeyRing,
    MissingKeyError,
    associated_data,
)
from clinicflow.core.database import released
from clinicflow.core.errors import NotFound, ValidationFailed
from clinicflow.core.models import utcnow
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import current_tenant, tenant_context
from clinicflow.integrations import metrics
from clinicflow.integrations.cache import MetricsCache
from clinicflow.integrations.models import N8nConnection
from clinicflow.integrations.n8n_client import N8nClient, N8nError, api_root
from clinicflow.integrations.repository import N8nConnectionRepository
from clinicflow.integrations.schemas import N8nConnect, WorkflowMetrics
from clinicflow.webhooks.delivery import require_safe_url

logger = structlog.get_logger("clinicflow.integrations")
# The platform's view asks this many practices' n8n at a time (each may take its timeout).
PRACTICES_ASKED_AT_ONCE = 8


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime
    # The default period ("the last 30 days") moves every second; its cached figures are the
    # same for the cache's lifetime, so it is cached under one name.
    cache_label: str


@dataclass(frozen=True, slots=True)
class Figures:
    totals: WorkflowMetrics
    workflows: list[WorkflowMetrics]
    # More executions in the period than one read takes (n8n_client.MAX_PAGES): the figures
    # cover only the newest `executions_read`.
    truncated: bool
    executions_read: int
    cached: bool  # served from the cache


def _aad(connection: N8nConnection) -> bytes:
    return associated_data("n8n_connections", connection.tenant_id, connection.id)


def _unopened_key(tenant_id: uuid.UUID, error: MissingKeyError | DecryptionError) -> str:
    """Why the platform's view skips a practice whose n8n API key this server cannot open."""
    if isinstance(error, MissingKeyError):
        logger.error(
            "encryption_key_missing", missing_key_id=error.key_id, tenant_id=str(tenant_id)
        )
        return (
            f"The practice's n8n API key is sealed with encryption key {error.key_id!r}, which "
            "this server does not have: the operator must add it to ENCRYPTION_KEYS and restart."
        )
    logger.error("n8n_api_key_unreadable", error=str(error), tenant_id=str(tenant_id))
    return (
        f"The practice's n8n API key cannot be decrypted ({error}): it was altered or corrupted; "
        "the practice must connect n8n again."
    )


@dataclass(frozen=True, slots=True)
class N8nTarget:
    """What reading a practice's n8n needs, as plain values: read from its connection in the
    request's transaction, used after that has been released (core/database.released)."""

    tenant_id: uuid.UUID
    base_url: str
    api_key: str = field(repr=False)
    # Figures are cached per connection, not per practice: a saved connection gets a new
    # `updated_at` (and one made after a DELETE a new id), so figures of the instance it
    # replaced can never answer for it. Clearing entries instead would not do: the cache may
    # be each worker's own memory, and another worker's entries would outlive the change.
    version: str

    def cache_key(self, period: Period) -> str:
        return f"n8n:{self.tenant_id}:{self.version}:{period.cache_label}"


class N8nService:
    """Works in the session's practice (core/tenancy); the platform admin switches practice."""

    def __init__(
        self, session: AsyncSession, keys: KeyRing, cache: MetricsCache, settings: Settings
    ) -> None:
        self.session = session
        self.keys = keys
        self.cache = cache
        self.settings = settings
        self.connections = N8nConnectionRepository(session)

    async def connect(self, body: N8nConnect, actor: Actor) -> N8nConnection:
        """Checked against n8n before it is saved: a wrong URL or key is a 502 (504 when
        slow) naming the problem now, not a broken dashboard later; nothing is saved."""
        base_url = api_root(str(body.base_url))
        # n8n (and DNS) may take seconds: not while holding a database connection or SQLite's
        # write lock, which every other practice's writes wait for. The connection is read
        # after, in the transaction that writes it.
        async with released(self.session):
            try:
                await require_safe_url(base_url, allow_private=self._allow_private)
            except ValueError as error:  # UnsafeWebhookURL; UnicodeError from an IDNA host
                raise ValidationFailed.for_field("base_url", str(error)) from error
            await self._client(base_url, body.api_key).workflows()
        connection = await self.connections.get() or N8nConnection(
            tenant_id=current_tenant(self.session)
        )
        self.connections.add(connection)
        connection.base_url = base_url
        connection.updated_by = actor.user_id
        connection.updated_at = utcnow()
        connection.api_key_key_id, connection.api_key = "", b""
        await self.session.flush()  # the id is part of what the key is sealed to
        sealed = self.keys.encrypt(body.api_key, aad=_aad(connection))
        connection.api_key_key_id, connection.api_key = sealed.key_id, sealed.blob
        await self.session.flush()
        await audit.record(
            self.session, "integration.n8n_connected", actor=actor, subject_type="n8n",
            subject_id=connection.id, details={"base_url": base_url},
        )  # fmt: skip
        return connection

    async def connection(self) -> N8nConnection | None:
        return await self.connections.get()

    async def disconnect(self, actor: Actor) -> None:
        connection = await self.connections.get()
        if connection is None:
            raise NotFound("No n8n connection is configured.")
        await self.connections.delete(connection)
        await audit.record(
            self.session, "integration.n8n_disconnected", actor=actor, subject_type="n8n",
            subject_id=connection.id,
        )  # fmt: skip

    async def workflow_metrics(self, period: Period, *, refresh: bool) -> Figures:
        """The practice's totals and each workflow's figures over the period, from the cache
        unless `refresh`. n8n is asked with the request's transaction released: a slow n8n
        holds no database connection or lock."""
        target = await self.target()
        if target is None:
            raise NotFound("No n8n connection is configured for this practice.")
        async with released(self.session):
            return await self.figures(target, period, refresh=refresh)

    async def every_practice_metrics(
        self, tenant_ids: list[uuid.UUID], period: Period, *, refresh: bool
    ) -> tuple[list[tuple[uuid.UUID, Figures]], dict[str, str]]:
        """The platform's view: each practice with n8n connected, and apart, those whose n8n
        could not be read, with why (one broken practice does not fail the others). Every
        connection is read first, then n8n is asked with the transaction released."""
        targets: list[N8nTarget] = []
        unavailable: dict[str, str] = {}
        for tenant_id in tenant_ids:
            async with tenant_context(self.session, tenant_id):
                try:
                    target = await self.target()
                except (MissingKeyError, DecryptionError) as error:
                    # Its n8n API key cannot be opened here: this practice is unavailable,
                    # the others are still answered (as /metrics/me, it is the operator's to
                    # fix, so the reason names the key).
                    unavailable[str(tenant_id)] = _unopened_key(tenant_id, error)
                    continue
                if target is not None:
                    targets.append(target)
        asking = asyncio.Semaphore(PRACTICES_ASKED_AT_ONCE)

        async def ask(target: N8nTarget) -> tuple[uuid.UUID, Figures] | None:
            async with asking:
                try:
                    return target.tenant_id, await self.figures(target, period, refresh=refresh)
                except N8nError as error:  # whatever went wrong with this practice's n8n
                    unavailable[str(target.tenant_id)] = error.detail
                    return None

        async with released(self.session):
            answers = await asyncio.gather(*(ask(target) for target in targets))
        return [answer for answer in answers if answer is not None], unavailable

    async def target(self) -> N8nTarget | None:
        connection = await self.connections.get()
        if connection is None:
            return None
        return N8nTarget(
            connection.tenant_id, connection.base_url, self._api_key(connection),
            version=f"{connection.id}:{connection.updated_at.isoformat()}",
        )  # fmt: skip

    async def figures(self, target: N8nTarget, period: Period, *, refresh: bool) -> Figures:
        """From the cache unless `refresh`, else from n8n; touches no database."""
        start, end = period.start, period.end
        key = target.cache_key(period)
        if not refresh and (cached := await self.cache.get(key)) is not None:
            stored = json.loads(cached)
            return Figures(
                WorkflowMetrics.model_validate(stored["totals"]),
                [WorkflowMetrics.model_validate(item) for item in stored["workflows"]],
                truncated=stored["truncated"],
                executions_read=stored["executions_read"],
                cached=True,
            )
        client = self._client(target.base_url, target.api_key)
        workflows = await client.workflows()
        history = await client.executions(since=start)
        executions = history.executions
        totals = metrics.figures(executions, start, end, "*", "All workflows")
        figures = metrics.per_workflow(workflows, executions, start, end)
        stored = {
            "totals": totals.model_dump(mode="json"),
            "workflows": [item.model_dump(mode="json") for item in figures],
            "truncated": not history.complete,
            "executions_read": history.read,
        }
        await self.cache.put(key, json.dumps(stored))
        return Figures(
            totals, figures, truncated=not history.complete, executions_read=history.read,
            cached=False,
        )  # fmt: skip

    def _api_key(self, connection: N8nConnection) -> str:
        sealed = Ciphertext(connection.api_key_key_id, connection.api_key)
        return self.keys.decrypt(sealed, aad=_aad(connection))

    @property
    def _allow_private(self) -> bool:
        """The webhooks' rule (SSRF): development and tests run n8n on localhost; production
        never calls a private, loopback, link-local or metadata address."""
        return self.settings.allows_private_targets

    def _client(self, base_url: str, api_key: str) -> N8nClient:
        return N8nClient(
            base_url, api_key, timeout=self.settings.n8n_timeout_seconds,
            allow_private=self._allow_private,
        )  # fmt: skip

"""Queueing messages in the caller's transaction, and delivering claimed ones (the worker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clinicflow.core.crypto import (
    Ciphertext,
    DecryptionError,
    KeyRing,
    MissingKeyError,
    associated_data,
)
from clinicflow.core.database import claim_write_lock
from clinicflow.core.models import new_id, utcnow
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import current_tenant, tenant_context
from clinicflow.notifications.mailer import EmailMessageSpec, MailDeliveryError, Mailer
from clinicflow.notifications.models import Notification, OutboxMessage, OutboxStatus
from clinicflow.notifications.repository import NotificationRepository, OutboxRepository
from clinicflow.webhooks.delivery import UnsafeWebhookURL, WebhookDeliveryError, post_event

EMAIL = "email"
WEBHOOK = "webhook"
logger = structlog.get_logger("clinicflow.outbox")
# Work a request hands to the worker: run in its own transaction with an Outbox to queue what it
# sends. (A request that must not show, by its time, what it found, e.g. whether an account
# exists, queues one job whatever the answer and lets the worker look.)
JobHandler = Callable[[AsyncSession, "Outbox", dict[str, Any]], Awaitable[None]]


class JobDatabaseError(Exception):
    """A job's transaction failed in the database (locked, a serialization failure, the
    connection lost): nothing it wrote was kept, so it is a failed attempt, retried like a
    refused delivery. The message names the driver's error only, never the statement or its
    parameters (which may hold the payload's address or a token's hash)."""

    def __init__(self, error: SQLAlchemyError) -> None:
        cause = error.orig if isinstance(error, DBAPIError) else error
        first_line = (str(cause).splitlines() or [""])[0][:200]
        super().__init__(f"{type(cause).__name__}: {first_line}")


def _job_handlers() -> Mapping[str, JobHandler]:
    """The jobs the domains queue, by kind. Imported when first needed: the domains import
    this module to queue, so it cannot import them when it loads."""
    from clinicflow.auth.account_service import JOBS as account_jobs

    return account_jobs


def _aad(message_id: uuid.UUID) -> bytes:
    return associated_data("outbox_messages", message_id)


class Outbox:
    """What services use to send: rows join the caller's transaction (services only flush),
    so a message exists exactly when the change that caused it was committed."""

    def __init__(self, key_ring: KeyRing, settings: Settings) -> None:
        self.key_ring = key_ring
        self.settings = settings

    def queue_email(self, session: AsyncSession, message: EmailMessageSpec) -> OutboxMessage:
        """An account e-mail (reset, verification, invitation): no practice involved."""
        return self._queue(session, new_id(), EMAIL, asdict(message), utcnow())

    def queue_job(self, session: AsyncSession, kind: str, payload: dict[str, Any]) -> OutboxMessage:
        """Work for the worker (a job handler of `kind`), durable like a message; the payload
        is encrypted like one."""
        if kind not in _job_handlers():
            raise ValueError(f"no job handler for {kind!r}")
        return self._queue(session, new_id(), kind, payload, utcnow())

    def queue_for_tenant(
        self, session: AsyncSession, notification: Notification, kind: str, payload: dict[str, Any]
    ) -> Notification:
        """A practice's message: its visible record (RLS) and the outbox row share one id,
        and the row names the practice, so the worker can report back on that record."""
        tenant_id = current_tenant(session)
        if tenant_id is None:
            raise RuntimeError("a practice's notification needs a tenant-scoped session")
        notification.id = notification.id or new_id()
        notification.status = OutboxStatus.PENDING
        notification.attempts = 0
        NotificationRepository(session).add(notification)
        # Also in the payload, for workers still on the release before `practice_id`.
        envelope = {**payload, "tenant_id": str(tenant_id)}
        row = self._queue(session, notification.id, kind, envelope, notification.scheduled_for)
        row.practice_id = tenant_id
        return notification

    async def cancel(self, session: AsyncSession, notification: Notification) -> bool:
        if not await OutboxRepository(session).cancel_pending(notification.id):
            return False
        notification.status = OutboxStatus.CANCELLED
        return True

    def _queue(
        self,
        session: AsyncSession,
        message_id: uuid.UUID,
        kind: str,
        payload: dict[str, Any],
        available_at: datetime,
    ) -> OutboxMessage:
        sealed = self.key_ring.encrypt(json.dumps(payload), aad=_aad(message_id))
        row = OutboxMessage(
            id=message_id,
            kind=kind,
            status=OutboxStatus.PENDING,
            attempts=0,
            max_attempts=self.settings.outbox_max_attempts,
            available_at=available_at,
            payload_key_id=sealed.key_id,
            payload=sealed.blob,
        )
        OutboxRepository(session).add(row)
        return row


async def get_outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.outbox
    return outbox


OutboxDep = Annotated[Outbox, Depends(get_outbox)]


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with "equal jitter": half the delay fixed, half random, so retries
    from many workers spread out instead of hitting a recovering server together."""
    delay = min(cap, base * float(2 ** max(attempts - 1, 0)))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (jitter, not a secret)


class Worker:
    """Claims due messages under a lease, delivers them, records the outcome.

    Each step is its own short transaction, so nothing is held open while talking to a mail
    server or a webhook receiver; a worker killed mid-delivery leaves its claim to expire and
    be taken over by another.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        key_ring: KeyRing,
        mailer: Mailer,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.key_ring = key_ring
        self.mailer = mailer
        self.settings = settings

    async def run_once(self) -> int:
        """Claim and deliver one batch; the number of messages claimed."""
        token = uuid.uuid4()
        async with self.sessionmaker() as session, session.begin():
            claimed = await OutboxRepository(session).claim(
                token=token,
                now=utcnow(),
                lease=timedelta(seconds=self.settings.outbox_lease_seconds),
                limit=self.settings.worker_batch_size,
            )
        await asyncio.gather(*(self._deliver(message, token) for message in claimed))
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: drain what is due, then poll."""
        logger.info("worker.started")
        while not stop.is_set():
            try:
                busy = await self.run_once() > 0
            except Exception:  # the database may be restarting; keep the loop alive
                logger.exception("worker.claim_failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.worker_poll_seconds)
        logger.info("worker.stopped")

    async def _deliver(self, message: OutboxMessage, token: uuid.UUID) -> None:
        try:
            payload = self._open(message)
        except MissingKeyError as error:
            # Sealed with a key this process lacks: during a rolling rotation a server with
            # the new list seals what a worker still on the old list claims. Another worker,
            # or this one restarted with the key, can open it, so it is a failed attempt like
            # any other (backoff; dead after its last attempt), not a lost message.
            logger.error(
                "outbox.key_missing", message_id=str(message.id), missing_key_id=error.key_id
            )
            await self._failed(message, token, {}, _missing_key(error))
            return
        except (DecryptionError, ValueError) as error:
            # Tampered with or corrupt: no retry can open it, and a message that fails here
            # must not fail the claimed batch (its siblings would stay claimed and this one
            # would never die): it is dead now, with the reason.
            reason = _unreadable(error)
            logger.error("outbox.unreadable", message_id=str(message.id), error=reason)
            await self._settle(message, token, {}, OutboxStatus.DEAD, reason)
            return
        try:
            if message.attempts > message.max_attempts:  # its last lease ran out: stop here
                await self._settle(message, token, payload, OutboxStatus.DEAD, "lease expired")
                return
            await self._send(message.kind, payload)
        except (
            MailDeliveryError, WebhookDeliveryError, UnsafeWebhookURL, OSError, ValueError,
            JobDatabaseError,
        ) as error:  # fmt: skip
            await self._failed(message, token, payload, f"{type(error).__name__}: {error}")
            return
        await self._settle(message, token, payload, OutboxStatus.SENT)

    def _open(self, message: OutboxMessage) -> dict[str, Any]:
        sealed = Ciphertext(message.payload_key_id, message.payload)
        payload: dict[str, Any] = json.loads(self.key_ring.decrypt(sealed, aad=_aad(message.id)))
        return payload

    async def _send(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == EMAIL:
            message = EmailMessageSpec(
                to=payload["to"],
                subject=payload["subject"],
                text=payload["text"],
                html=payload["html"],
            )
            await self.mailer.send(message)
        elif kind == WEBHOOK:
            await post_event(
                payload["url"],
                payload["secret"],
                payload["body"],
                payload["event_id"],
                allow_private=self.settings.allows_private_targets,
            )
        elif (job := _job_handlers().get(kind)) is not None:
            # Its own transaction: what the job writes, and the messages it queues, are
            # committed together, then delivered like any message. A writer's: it holds
            # SQLite's write lock from its start, since a job reads before it writes (on SQLite
            # a read transaction cannot wait for the lock to write, and fails "database is
            # locked"; core/database.claim_write_lock).
            try:
                async with self.sessionmaker() as session, session.begin():
                    await claim_write_lock(session)
                    await job(session, Outbox(self.key_ring, self.settings), payload)
            except SQLAlchemyError as error:
                raise JobDatabaseError(error) from error
        else:
            raise ValueError(f"unknown outbox message kind {kind!r}")

    async def _failed(
        self, message: OutboxMessage, token: uuid.UUID, payload: dict[str, Any], error: str
    ) -> None:
        # Only ids and the error are logged: a payload may hold a patient's text or a token.
        logger.warning(
            "outbox.delivery_failed", message_id=str(message.id), attempt=message.attempts,
            error=error,
        )  # fmt: skip
        if message.attempts >= message.max_attempts:
            await self._settle(message, token, payload, OutboxStatus.DEAD, error)
            return
        delay = backoff_seconds(
            message.attempts,
            self.settings.outbox_backoff_base_seconds,
            self.settings.outbox_backoff_max_seconds,
        )
        retry_at = utcnow() + timedelta(seconds=delay)
        await self._settle(message, token, payload, OutboxStatus.PENDING, error, retry_at)

    async def _settle(
        self,
        message: OutboxMessage,
        token: uuid.UUID,
        payload: dict[str, Any],
        status: OutboxStatus,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """The outcome, and its mirror on the practice's notification, in one transaction."""
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            kept = await OutboxRepository(session).settle(
                message.id, token, status=status, now=now, retry_at=retry_at, error=error
            )
            practice = message.practice_id or _payload_practice(payload)
            if kept and practice is not None:
                async with tenant_context(session, practice):
                    await _mirror(session, message, status, error, now)
        if not kept:
            logger.warning("outbox.claim_lost", message_id=str(message.id))


def _payload_practice(payload: dict[str, Any]) -> uuid.UUID | None:
    """Where messages queued before `practice_id` (migration 0030) name their practice."""
    return uuid.UUID(payload["tenant_id"]) if "tenant_id" in payload else None


def _missing_key(error: MissingKeyError) -> str:
    return (
        f"MissingKeyError: the payload is sealed with encryption key {error.key_id!r}, which "
        "this worker's ENCRYPTION_KEYS does not list (restart workers with the new key list "
        "before or with the servers; never drop a key before `clinicflow records rotate-key`)"
    )


def _unreadable(error: Exception) -> str:
    return f"{type(error).__name__}: the payload cannot be opened ({error}); not retried"


async def _mirror(
    session: AsyncSession,
    message: OutboxMessage,
    status: OutboxStatus,
    error: str | None,
    now: datetime,
) -> None:
    notification = await NotificationRepository(session).get(message.id)
    if notification is None:  # the practice was deleted meanwhile
        return
    notification.status = status
    notification.attempts = message.attempts
    if error is not None:
        notification.last_error = error[:500]
    if status == OutboxStatus.SENT:
        notification.sent_at = now
    await session.flush()

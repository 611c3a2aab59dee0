"""Queueing messages in the caller's transaction, and delivering claimed ones (the worker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clinicflow.core.crypto import Ciphertext, DecryptionError, KeyRing, associated_data
from clinicflow.core.models import new_id, utcnow
from clinicflow.core.settings import Settings
from clinicflow.notifications.mailer import EmailMessageSpec, MailDeliveryError, Mailer
from clinicflow.notifications.models import OutboxMessage, OutboxStatus
from clinicflow.notifications.repository import OutboxRepository

EMAIL = "email"
logger = structlog.get_logger("clinicflow.outbox")


def _aad(message_id: uuid.UUID) -> bytes:
    return associated_data("outbox_messages", message_id)


class Outbox:
    """What services use to send: the row joins the caller's transaction (services only
    flush), so a message exists exactly when the change that caused it was committed."""

    def __init__(self, key_ring: KeyRing, settings: Settings) -> None:
        self.key_ring = key_ring
        self.settings = settings

    def queue_email(self, session: AsyncSession, message: EmailMessageSpec) -> OutboxMessage:
        message_id = new_id()
        sealed = self.key_ring.encrypt(json.dumps(asdict(message)), aad=_aad(message_id))
        row = OutboxMessage(
            id=message_id,
            kind=EMAIL,
            status=OutboxStatus.PENDING,
            attempts=0,
            max_attempts=self.settings.outbox_max_attempts,
            available_at=utcnow(),
            payload_key_id=sealed.key_id,
            payload=sealed.blob,
        )
        OutboxRepository(session).add(row)
        return row


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with "equal jitter": half the delay fixed, half random, so retries
    from many workers spread out instead of hitting a recovering server together."""
    delay = min(cap, base * float(2 ** max(attempts - 1, 0)))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (jitter, not a secret)


class Worker:
    """Claims due messages under a lease, delivers them, records the outcome.

    Each step is its own short transaction, so nothing is held open while talking to a mail
    server; a worker killed mid-delivery leaves its claim to expire and be taken over.
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
        if message.attempts > message.max_attempts:  # its last lease expired: stop retrying
            await self._settle(message, token, OutboxStatus.DEAD, error="lease expired")
            return
        try:
            await self._send(message)
        except (MailDeliveryError, DecryptionError, OSError, ValueError) as error:
            await self._failed(message, token, f"{type(error).__name__}: {error}")
            return
        await self._settle(message, token, OutboxStatus.SENT)

    async def _send(self, message: OutboxMessage) -> None:
        sealed = Ciphertext(message.payload_key_id, message.payload)
        payload = json.loads(self.key_ring.decrypt(sealed, aad=_aad(message.id)))
        if message.kind != EMAIL:
            raise ValueError(f"unknown outbox message kind {message.kind!r}")
        await self.mailer.send(EmailMessageSpec(**payload))

    async def _failed(self, message: OutboxMessage, token: uuid.UUID, error: str) -> None:
        # Only the error is logged: the payload may hold a patient's e-mail text or a token.
        logger.warning(
            "outbox.delivery_failed", message_id=str(message.id), attempt=message.attempts,
            error=error,
        )  # fmt: skip
        if message.attempts >= message.max_attempts:
            await self._settle(message, token, OutboxStatus.DEAD, error=error)
            return
        delay = backoff_seconds(
            message.attempts,
            self.settings.outbox_backoff_base_seconds,
            self.settings.outbox_backoff_max_seconds,
        )
        retry_at = utcnow() + timedelta(seconds=delay)
        await self._settle(message, token, OutboxStatus.PENDING, error=error, retry_at=retry_at)

    async def _settle(
        self,
        message: OutboxMessage,
        token: uuid.UUID,
        status: OutboxStatus,
        *,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        async with self.sessionmaker() as session, session.begin():
            kept = await OutboxRepository(session).settle(
                message.id, token, status=status, now=utcnow(),
                retry_at=retry_at,
                error=error,
            )  # fmt: skip
        if not kept:
            logger.warning("outbox.claim_lost", message_id=str(message.id))

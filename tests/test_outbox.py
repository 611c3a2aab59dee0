"""The durable outbox: same-transaction queueing, leases, races between worker processes,
retries with backoff, dead messages. Real PostgreSQL, real SMTP, real `clinicflow worker`s."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from clinicflow.auth.account_service import RESET_REQUESTED
from clinicflow.core.crypto import KeyRing, generate_key_entry
from clinicflow.core.database import SessionDep
from clinicflow.core.errors import Conflict
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from clinicflow.notifications.mailer import EmailMessageSpec
from clinicflow.notifications.models import OutboxMessage, OutboxStatus
from clinicflow.notifications.outbox import Outbox, Worker
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository
from tests import documented_statuses
from tests.conftest import PgTestDatabase
from tests.factories import deliver_outbox, make_member
from tests.mailtools import Inbox, running_inbox, start_worker, stop


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    yield from running_inbox()


@pytest.fixture
async def smtp_app(inbox: Inbox, db: FastAPI, settings: Settings) -> AsyncIterator[FastAPI]:
    """The app delivering to the test's SMTP server, retrying fast, giving up after 3 tries."""
    app = create_app(
        settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": inbox.port,
                "smtp_tls": "none",
                "outbox_max_attempts": 3,
                "outbox_backoff_base_seconds": 0.01,
                "outbox_backoff_max_seconds": 0.02,
            }
        )
    )
    async with app.router.lifespan_context(app):
        yield app


def spec(subject: str) -> EmailMessageSpec:
    return EmailMessageSpec(
        to="patient@example.com", subject=subject, text="private text", html="<p>private</p>"
    )


async def queue(app: FastAPI, *subjects: str) -> None:
    async with app.state.database.sessionmaker() as session, session.begin():
        for subject in subjects:
            app.state.outbox.queue_email(session, spec(subject))


async def rows(app: FastAPI) -> list[OutboxMessage]:
    async with app.state.database.sessionmaker() as session:
        return list(await session.scalars(select(OutboxMessage)))


async def wait_until(condition: object, limit_seconds: float = 60.0) -> None:
    """Poll an async predicate; the deadline only stops a broken test from hanging."""
    deadline = asyncio.get_running_loop().time() + limit_seconds
    while not await condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.1)


async def test_a_request_that_fails_after_queueing_sends_nothing(
    smtp_app: FastAPI, inbox: Inbox
) -> None:
    @smtp_app.post("/test-only/queue-then-fail")
    async def queue_then_fail(session: SessionDep) -> None:
        smtp_app.state.outbox.queue_email(session, spec("never"))
        await session.flush()
        raise Conflict("the change was refused after the message was queued")

    transport = httpx.ASGITransport(app=documented_statuses.recording(smtp_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/test-only/queue-then-fail")
    assert response.status_code == 409
    assert await rows(smtp_app) == []
    assert await deliver_outbox(smtp_app) == 0
    assert inbox.messages == []


async def test_a_refused_message_is_retried_with_backoff_and_then_sent_once(
    smtp_app: FastAPI, inbox: Inbox
) -> None:
    inbox.refuse_next = 2
    await queue(smtp_app, "third time lucky")
    while inbox.messages == []:
        await deliver_outbox(smtp_app)
        await asyncio.sleep(0.01)  # the backoff: the retry is not due at once
    await asyncio.sleep(0.1)
    await deliver_outbox(smtp_app)
    assert inbox.subjects() == ["third time lucky"]
    assert inbox.refused == 2
    [row] = await rows(smtp_app)
    assert (row.status, row.attempts, row.sent_at is not None) == ("sent", 3, True)
    assert row.last_error is not None
    assert "451" in row.last_error


async def test_a_message_that_always_fails_ends_dead_and_visible(
    smtp_app: FastAPI, inbox: Inbox
) -> None:
    inbox.refuse_next = 1000
    await queue(smtp_app, "never accepted")
    for _ in range(100):
        await deliver_outbox(smtp_app)
        [row] = await rows(smtp_app)
        if row.status == OutboxStatus.DEAD:
            break
        await asyncio.sleep(0.01)
    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error is not None
    assert "451" in row.last_error
    assert inbox.refused == 3
    assert inbox.messages == []


def worker_with(app: FastAPI, keys: str) -> Worker:
    """A `clinicflow worker` of its own, started with ENCRYPTION_KEYS=`keys`."""
    state = app.state
    return Worker(
        state.database.sessionmaker, KeyRing.from_setting(keys), state.mailer, state.settings
    )


async def test_a_tampered_message_is_dead_at_once_and_the_others_are_sent(
    smtp_app: FastAPI, inbox: Inbox
) -> None:
    """Tampered with (or corrupt): no retry can open it, so it is dead with the reason, and the
    batch it was claimed with is delivered instead of the claim loop failing on every poll."""
    async with smtp_app.state.database.sessionmaker() as session, session.begin():
        tampered = smtp_app.state.outbox.queue_email(session, spec("tampered"))
        tampered.payload = tampered.payload[:-1] + bytes([tampered.payload[-1] ^ 1])
    await queue(smtp_app, "readable")

    assert await deliver_outbox(smtp_app) == 2
    assert inbox.subjects() == ["readable"]
    outcome = {row.id: row for row in await rows(smtp_app)}
    assert (outcome[tampered.id].status, outcome[tampered.id].attempts) == ("dead", 1)
    assert "DecryptionError" in (outcome[tampered.id].last_error or "")
    assert await deliver_outbox(smtp_app) == 0  # nothing is left to claim again


async def test_a_message_sealed_with_a_key_this_worker_lacks_waits_for_a_worker_that_has_it(
    smtp_app: FastAPI, inbox: Inbox
) -> None:
    """A rolling key rotation: servers restarted with the new key list first seal with the new
    key while a worker still runs with the old list. Its attempt fails like a refused delivery
    (backoff, `last_error` naming the key; the batch's others are sent) and a worker that has
    the key delivers it; a key no worker gets makes it dead after OUTBOX_MAX_ATTEMPTS only."""
    settings = smtp_app.state.settings
    current = settings.encryption_keys.get_secret_value()
    rotated = f"{generate_key_entry('k-new')},{current}"
    new_server = Outbox(KeyRing.from_setting(rotated), settings)
    lost_server = Outbox(
        KeyRing.from_setting(f"{generate_key_entry('k-lost')},{current}"), settings
    )
    async with smtp_app.state.database.sessionmaker() as session, session.begin():
        reset = new_server.queue_email(session, spec("sealed with the new key"))
        doomed = lost_server.queue_email(session, spec("sealed with a key no worker gets"))
    await queue(smtp_app, "readable")

    assert await worker_with(smtp_app, current).run_once() == 3  # a worker on the old list
    assert inbox.subjects() == ["readable"]
    outcome = {row.id: row for row in await rows(smtp_app)}
    for message, key_id in ((reset, "'k-new'"), (doomed, "'k-lost'")):
        row = outcome[message.id]
        assert (row.status, row.attempts, row.claim_token) == ("pending", 1, None)
        assert "MissingKeyError" in (row.last_error or "")
        assert key_id in (row.last_error or "")
        assert row.available_at > row.created_at  # backed off, not dead

    restarted = worker_with(smtp_app, rotated)  # the new list
    for _ in range(200):
        await restarted.run_once()
        outcome = {row.id: row for row in await rows(smtp_app)}
        if {outcome[reset.id].status, outcome[doomed.id].status} == {"sent", "dead"}:
            break
        await asyncio.sleep(0.01)
    assert (outcome[reset.id].status, outcome[reset.id].attempts) == ("sent", 2)
    assert inbox.subjects() == ["readable", "sealed with the new key"]
    assert (outcome[doomed.id].status, outcome[doomed.id].attempts) == ("dead", 3)
    assert "'k-lost'" in (outcome[doomed.id].last_error or "")


async def test_a_job_failing_in_the_database_is_retried_and_its_batch_is_delivered(
    smtp_app: FastAPI, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job's database error (a serialization failure, a lost connection, SQLite's lock) is
    a failed attempt like a refused delivery: the message backs off, `last_error` names the
    driver's error (not the statement's values), the rest of the batch is sent, and the retry
    runs the job again; it does not escape the batch and leave the job `sending`."""
    owner = await make_member(smtp_app, role="owner")
    async with smtp_app.state.database.sessionmaker() as session, session.begin():
        job = smtp_app.state.outbox.queue_job(session, RESET_REQUESTED, {"email": owner.email})
    await queue(smtp_app, "sent with the job's batch")
    looked_up, failures = UserRepository.get_by_email, [1]

    async def fails_once(self: UserRepository, email: str) -> User | None:
        if failures and failures.pop():
            raise OperationalError(
                "SELECT … FROM users", {"email": email},
                RuntimeError("could not serialize access due to concurrent update"),
            )  # fmt: skip
        return await looked_up(self, email)

    monkeypatch.setattr(UserRepository, "get_by_email", fails_once)
    worker = Worker(
        smtp_app.state.database.sessionmaker, smtp_app.state.key_ring, smtp_app.state.mailer,
        smtp_app.state.settings,
    )  # fmt: skip
    assert await worker.run_once() == 2
    assert inbox.subjects() == ["sent with the job's batch"]
    [row] = [row for row in await rows(smtp_app) if row.id == job.id]
    assert (row.status, row.attempts, row.claim_token) == ("pending", 1, None)
    assert row.last_error == (
        "JobDatabaseError: RuntimeError: could not serialize access due to concurrent update"
    )
    assert owner.email not in row.last_error

    for _ in range(200):  # the retry, once its backoff is over: the link, then its e-mail
        await deliver_outbox(smtp_app)
        if len(inbox.messages) == 2:
            break
        await asyncio.sleep(0.01)
    [row] = [row for row in await rows(smtp_app) if row.id == job.id]
    assert (row.status, row.attempts) == ("sent", 2)
    assert inbox.messages[1]["To"] == owner.email


async def test_the_payload_is_encrypted_at_rest(
    smtp_app: FastAPI, admin_engine: AsyncEngine
) -> None:
    await queue(smtp_app, "a subject nobody should read")
    async with admin_engine.connect() as connection:
        raw = (await connection.execute(select(OutboxMessage.payload))).scalar_one()
    assert b"private text" not in raw
    assert b"patient@example.com" not in raw


async def test_a_worker_killed_after_claiming_loses_nothing(
    smtp_app: FastAPI, inbox: Inbox, pg_database: PgTestDatabase, tmp_path: Path
) -> None:
    await queue(smtp_app, "survives a crash")
    # A server that accepts connections and never greets: the first worker hangs mid-delivery.
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        stuck = start_worker(
            pg_database.app_url, black_hole.getsockname()[1], tmp_path, outbox_lease_seconds="3"
        )

        async def claimed() -> bool:
            return [row.status for row in await rows(smtp_app)] == ["sending"]

        try:
            await wait_until(claimed)
        finally:
            stuck.send_signal(signal.SIGKILL)
            stuck.wait()
    rescuer = start_worker(pg_database.app_url, inbox.port, tmp_path, outbox_lease_seconds="3")
    try:

        async def sent() -> bool:
            return [row.status for row in await rows(smtp_app)] == ["sent"]

        await wait_until(sent)
    finally:
        stop(rescuer)
    assert inbox.subjects() == ["survives a crash"]
    [row] = await rows(smtp_app)
    assert row.attempts == 2  # the killed worker's claim, then the rescuer's


async def test_two_worker_processes_deliver_200_messages_exactly_once(
    smtp_app: FastAPI, inbox: Inbox, pg_database: PgTestDatabase, tmp_path: Path
) -> None:
    subjects = [f"message {number:03}" for number in range(200)]
    await queue(smtp_app, *subjects)
    workers = [
        start_worker(pg_database.app_url, inbox.port, tmp_path, worker_batch_size="5")
        for _ in range(2)
    ]
    try:

        async def all_sent() -> bool:
            async with smtp_app.state.database.sessionmaker() as session:
                count = await session.scalar(
                    select(func.count()).where(OutboxMessage.status == OutboxStatus.SENT)
                )
            return count == len(subjects)

        await wait_until(all_sent, limit_seconds=120)
    finally:
        for worker in workers:
            stop(worker)
    assert sorted(inbox.subjects()) == subjects  # each once: no duplicate, none missing
    assert {row.attempts for row in await rows(smtp_app)} == {1}

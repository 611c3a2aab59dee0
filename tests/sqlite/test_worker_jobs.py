"""On the embedded database a worker's job (POST /auth/forgot-password's `reset_requested`)
reads before it writes: it must hold SQLite's write lock from its transaction's start, or a
write committed by another connection in between fails it with "database is locked"."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from clinicflow.auth.account_service import RESET_REQUESTED
from clinicflow.auth.models import AccountToken
from clinicflow.notifications.models import OutboxMessage, OutboxStatus
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository
from tests.factories import deliver_outbox, make_member


async def test_a_reset_job_is_not_failed_by_a_write_committed_while_it_runs(
    db: FastAPI, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_member(db, role="owner")
    other = await make_member(db, role="owner")
    async with db.state.database.sessionmaker() as session, session.begin():
        job = db.state.outbox.queue_job(session, RESET_REQUESTED, {"email": owner.email})

    # Another process writes right after the job has looked the account up: e.g. a request
    # renaming another user. It waits for the write lock if the job holds it.
    written = threading.Event()

    def write_elsewhere() -> None:
        connection = sqlite3.connect(sqlite_path, timeout=30, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "UPDATE users SET full_name = 'Renamed' WHERE id = ?", (other.user_id.hex,)
            )
            connection.execute("COMMIT")
        finally:
            connection.close()
        written.set()

    looked_up = UserRepository.get_by_email

    async def look_up_then_let_another_write(self: UserRepository, email: str) -> User | None:
        user = await looked_up(self, email)
        writer = threading.Thread(target=write_elsewhere)
        writer.start()
        # Without the job's write lock the other write commits at once; with it, it waits
        # for the job's commit (the wait is only so the test sees which happened).
        await asyncio.to_thread(written.wait, 1.0)
        return user

    monkeypatch.setattr(UserRepository, "get_by_email", look_up_then_let_another_write)
    assert await deliver_outbox(db) >= 1
    await asyncio.to_thread(written.wait, 30)

    async with db.state.database.sessionmaker() as session:
        [row] = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.id == job.id))
        ).all()
        tokens = (
            await session.scalars(select(AccountToken).where(AccountToken.user_id == owner.user_id))
        ).all()
        renamed = await session.get(User, other.user_id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.SENT, 1, None)
    assert [token.purpose for token in tokens] == ["password_reset"]
    assert renamed is not None
    assert renamed.full_name == "Renamed"

"""On the embedded database a write holds SQLite's one write lock for its whole transaction, so
the unit of work begins only once the request's body has arrived."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from starlette.types import Message

from clinicflow.core.database import claim_write_lock, released
from clinicflow.tenants.service import create_tenant
from tests.factories import make_member, post_raw


async def test_a_body_still_arriving_does_not_hold_the_write_lock(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    arrived = asyncio.Event()

    async def slow_body() -> Message:
        await arrived.wait()
        return {"type": "http.request", "body": b"full_name=Slow", "more_body": False}

    # A content type the input guard does not read ahead: the route reads the body itself.
    slow = asyncio.create_task(
        post_raw(db, owner, "/api/v1/patients", slow_body, content_type="application/octet-stream")
    )
    await asyncio.sleep(0.2)  # the slow request is waiting for its body by now

    other = await asyncio.wait_for(
        client.post("/api/v1/patients", json={"full_name": "Quick"}, headers=owner.headers),
        timeout=3,  # SQLite's busy timeout is 5 s: a held lock fails this
    )
    arrived.set()
    answered = await slow

    assert other.status_code == 201
    assert len(answered) == 1
    assert 400 <= answered[0] < 500  # not JSON: refused, after the other one


async def test_released_lets_other_writers_in_and_refuses_once_something_was_written(
    db: FastAPI,
) -> None:
    """core.database.released: a writer's session gives SQLite's write lock back while it
    waits on something outside, claims it again after, and refuses once it has written."""
    sessions = db.state.database.sessionmaker
    async with sessions() as session:
        await claim_write_lock(session)
        await session.execute(select(1))
        async with released(session):
            assert not session.in_transaction()
            async with sessions() as other:  # a held lock would keep this waiting 5 s, then fail
                await asyncio.wait_for(claim_write_lock(other), timeout=3)
                await create_tenant(other, name="Written meanwhile")
                await other.commit()
        assert session.in_transaction()  # the write lock, claimed again
        await create_tenant(session, name="Written after")
        with pytest.raises(RuntimeError, match="after a write"):
            async with released(session):
                pass
        await session.rollback()

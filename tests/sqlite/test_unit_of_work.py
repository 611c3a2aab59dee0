"""On the embedded database a write holds SQLite's one write lock for its whole transaction, so
the unit of work begins only once the request's body has arrived."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from starlette.types import Message

from clinicflow.core.database import claim_write_lock, released
from clinicflow.tenants.service import create_tenant
from tests import documented_statuses
from tests.factories import make_api_key, make_member, post_raw


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


async def test_an_agents_reads_answer_while_another_connection_holds_the_write_lock(
    db: FastAPI, sqlite_path: Path
) -> None:
    """/mcp reads (the key check, tools/list, the read-only tools) begin an ordinary read
    transaction, so a writer elsewhere does not hold them up; a write tool still waits for
    the write lock and then succeeds."""
    owner = await make_member(db, role="owner")
    scopes = ["patients:read", "patients:write", "availability:read", "appointments:read"]
    key = await make_api_key(db, owner.tenant_id, scopes)
    headers = {"X-API-Key": key, "Accept": "application/json, text/event-stream"}
    window = {"from": "2030-01-07T00:00:00-03:00", "to": "2030-01-07T23:59:00-03:00"}
    transport = httpx.ASGITransport(
        app=documented_statuses.recording(db), raise_app_exceptions=False
    )

    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

        async def rpc(method: str, **params: Any) -> tuple[float, httpx.Response]:
            began = time.monotonic()
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            response = await http.post("/mcp", json=body, headers=headers)
            return time.monotonic() - began, response

        async def tool(name: str, **arguments: Any) -> tuple[float, httpx.Response]:
            return await rpc("tools/call", name=name, arguments=arguments)

        await tool("create_patient", full_name="Ana")  # the key's first use is recorded now
        writer = sqlite3.connect(sqlite_path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # another process's write is in progress
            # SQLite's busy timeout is 5 s: a request that asks for the lock waits that long
            # and then fails.
            reads = [
                await rpc("tools/list"),
                await tool("find_patient", query="ana"),
                await tool("get_availability", **window),
                await tool("list_agenda"),
            ]
            creating = asyncio.create_task(tool("create_patient", full_name="Bia"))
            await asyncio.sleep(0.5)
            waited = not creating.done()
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        _, created = await creating

    assert [response.status_code for _, response in reads] == [200] * 4
    assert max(elapsed for elapsed, _ in reads) < 2
    listed, found = reads[0][1].json()["result"], reads[1][1].json()["result"]
    assert {t["name"] for t in listed["tools"]} == {
        "find_patient", "create_patient", "get_availability", "list_agenda"
    }  # fmt: skip
    assert [item["full_name"] for item in found["structuredContent"]["items"]] == ["Ana"]
    assert not any(response.json()["result"].get("isError") for _, response in reads[1:])
    assert waited  # the write waited for the lock, and then went through
    assert created.status_code == 200
    assert not created.json()["result"].get("isError"), created.text

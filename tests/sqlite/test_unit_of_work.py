"""On the embedded database a write holds SQLite's one write lock for its whole transaction, so
the unit of work begins only once the request's body has arrived."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from starlette.types import Message

from tests.factories import make_member


async def test_a_body_still_arriving_does_not_hold_the_write_lock(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner = await make_member(db, role="owner")
    arrived = asyncio.Event()
    answered: list[int] = []

    async def slow_body() -> Message:
        await arrived.wait()
        return {"type": "http.request", "body": b"full_name=Slow", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    # A content type the input guard does not read ahead: the route reads the body itself.
    headers = [(name.lower().encode(), value.encode()) for name, value in owner.headers.items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/patients", "raw_path": b"/api/v1/patients",
        "query_string": b"", "root_path": "", "client": ("203.0.113.7", 5000),
        "server": ("testserver", 80),
        "headers": [*headers, (b"content-type", b"application/octet-stream")],
    }  # fmt: skip
    slow = asyncio.create_task(db(scope, slow_body, send))
    await asyncio.sleep(0.2)  # the slow request is waiting for its body by now

    other = await asyncio.wait_for(
        client.post("/api/v1/patients", json={"full_name": "Quick"}, headers=owner.headers),
        timeout=3,  # SQLite's busy timeout is 5 s: a held lock fails this
    )
    arrived.set()
    await slow

    assert other.status_code == 201
    assert len(answered) == 1
    assert 400 <= answered[0] < 500  # not JSON: refused, after the other one

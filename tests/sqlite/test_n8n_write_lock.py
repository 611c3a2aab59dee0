"""On the embedded database a write holds SQLite's one write lock for its whole transaction:
PUT /integrations/n8n, which waits on the practice's n8n, must not hold it meanwhile, or every
other practice's writes wait for that n8n and fail after the busy timeout (5 s)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from sqlalchemy import select

from clinicflow.audit.models import AuditEvent
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.integrations.models import N8nConnection
from tests.factories import make_member
from tests.fake_n8n import connect, metrics_client, serve_fake_n8n


async def test_another_practice_writes_while_one_practice_s_n8n_is_slow(
    db: FastAPI, settings: Settings
) -> None:
    owner = await make_member(db, role="owner")
    other = await make_member(db, role="owner")
    async with (
        serve_fake_n8n() as (fake, base_url),
        metrics_client(settings, n8n_timeout_seconds=30) as client,
    ):
        fake.gate = asyncio.Event()
        slow = asyncio.create_task(connect(client, owner, base_url))
        await asyncio.wait_for(fake.waiting.wait(), timeout=5)
        meanwhile = await asyncio.wait_for(
            client.post("/api/v1/patients", json={"full_name": "Quick"}, headers=other.headers),
            timeout=3,  # SQLite's busy timeout is 5 s: a held write lock fails this
        )
        fake.gate.set()
        connected = await slow
        stored = await client.get("/api/v1/integrations/n8n", headers=owner.headers)
    assert meanwhile.status_code == 201, meanwhile.text
    assert connected.status_code == 200, connected.text
    assert stored.json()["base_url"] == base_url
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        assert len((await session.execute(select(N8nConnection))).scalars().all()) == 1
        actions = (await session.execute(select(AuditEvent.action))).scalars().all()
    assert actions.count("integration.n8n_connected") == 1

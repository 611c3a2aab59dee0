"""`make run` style: on the embedded SQLite default, `clinicflow serve` delivers its own
e-mails; no worker process is started."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.mailtools import Inbox, free_port, running_inbox, stop


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    yield from running_inbox()


@pytest.fixture
def server_url(inbox: Inbox, tmp_path: Path) -> Iterator[str]:
    """`clinicflow serve` on a fresh SQLite file, mailing the test's SMTP server."""
    clinicflow = str(Path(sys.executable).parent / "clinicflow")
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'clinicflow.db'}",
            "ENVIRONMENT": "development",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(inbox.port),
            "SMTP_TLS": "none",
            "LOG_LEVEL": "WARNING",
            "RATE_LIMIT_ENABLED": "false",
            "PASSWORD_HASH_MEMORY_KIB": "1024",
        }
    )
    subprocess.run([clinicflow, "db", "upgrade"], env=env, cwd=tmp_path, check=True)  # noqa: S603
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [clinicflow, "serve", "--port", str(port)], env=env, cwd=tmp_path
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


async def test_serve_on_sqlite_sends_the_sign_up_email_by_itself(
    inbox: Inbox, server_url: str
) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        for _ in range(300):
            try:
                if (await client.get("/health")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        created = await client.post(
            "/api/v1/auth/register",
            json={
                "email": "solo@example.com",
                "password": "k9#vQ2pX-signup",
                "full_name": "Solo Owner",
                "practice_name": "Solo Practice",
            },
        )
        assert created.status_code == 201, created.text
    for _ in range(300):
        if inbox.messages:
            break
        await asyncio.sleep(0.1)
    assert [str(message["To"]) for message in inbox.messages] == ["solo@example.com"]
    assert "confirm" in inbox.subjects()[0].lower()

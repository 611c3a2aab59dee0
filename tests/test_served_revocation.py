"""Revocation reaches every server process within 5 seconds, although each process remembers
verified callers for AUTH_CACHE_SECONDS (auth/principal_cache.py). Run as production does:
`clinicflow serve --workers 2` on PostgreSQL and on the embedded SQLite default, every request
from its own connection so both workers answer and both have the caller in memory before the
change."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

from clinicflow.core import migrate
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from tests.conftest import make_test_settings
from tests.factories import DEFAULT_PASSWORD, make_api_key, make_member
from tests.served import Served, serve

BOUND_SECONDS = 5.0
CLIENTS = 12  # parallel fresh connections per round: both workers answer some


async def _statuses(
    served: Served, path: str, headers: dict[str, str], tag: str = "poll", clients: int = CLIENTS
) -> list[int]:
    async def one(number: int) -> int:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
            request_id = {"X-Request-ID": f"{tag}-{number}-{uuid.uuid4().hex[:8]}"}
            answer = await client.get(path, headers={**headers, **request_id})
            return answer.status_code

    return list(await asyncio.gather(*(one(number) for number in range(clients))))


def _answering_processes(served: Served, tag: str) -> set[int]:
    """The server processes whose access log shows a request tagged so."""
    pids = set()
    for entry in _log_entries(served.log()):
        if str(entry.get("request_id", "")).startswith(f"{tag}-") and "pid" in entry:
            pids.add(int(entry["pid"]))
    return pids


def _log_entries(log: str) -> Iterator[dict[str, object]]:
    """Every JSON object in the log; two processes writing at once may share a line."""
    decoder = json.JSONDecoder()
    for line in log.splitlines():
        position = line.find("{")
        while position != -1:
            try:
                entry, end = decoder.raw_decode(line, position)
            except ValueError:
                position = line.find("{", position + 1)
                continue
            if isinstance(entry, dict):
                yield entry
            position = line.find("{", end)


async def _from_both_workers(
    served: Served, name: str, revocation: Revocation, stage: str, expected: int
) -> None:
    """Ask until both workers have answered this credential, every answer `expected`."""
    tag = f"{stage}-{name.replace(' ', '-')}"
    for _ in range(60):  # the kernel may hand one worker many connections in a row
        answers = await _statuses(served, revocation.path, revocation.headers, tag, 2 * CLIENTS)
        assert set(answers) == {expected}, (name, stage, answers)
        if len(_answering_processes(served, tag)) == 2:
            return
    raise AssertionError(f"one worker answered every request ({name}, {stage})")


@dataclass(frozen=True, slots=True)
class Revocation:
    path: str  # asked with the old credential
    headers: dict[str, str]
    expected: int  # what every process must answer once the change has reached it
    change: Callable[[], Awaitable[None]]


async def _stale_seconds(served: Served, revocations: dict[str, Revocation]) -> dict[str, float]:
    """Both workers remember each caller; every change is made at once; once the bound has
    passed, both workers must answer each revoked credential with its new rights. Returns,
    for the closing figures, how long after its change some process still answered 200."""
    for name, revocation in revocations.items():
        await _from_both_workers(served, name, revocation, "before", 200)
    await asyncio.gather(*(revocation.change() for revocation in revocations.values()))
    changed = time.monotonic()
    stale = dict.fromkeys(revocations, 0.0)
    while time.monotonic() - changed < BOUND_SECONDS:
        for name, revocation in revocations.items():
            sent = time.monotonic() - changed  # a stale answer proves staleness when it was asked
            answers = await _statuses(served, revocation.path, revocation.headers)
            if set(answers) != {revocation.expected}:
                assert set(answers) <= {200, revocation.expected}, answers
                stale[name] = sent
        await asyncio.sleep(0.2)
    for name, revocation in revocations.items():
        await _from_both_workers(served, name, revocation, "after", revocation.expected)
    return stale


def _call(
    served: Served, method: str, path: str, headers: dict[str, str], **body: object
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
            answer = await client.request(method, path, headers=headers, json=body or None)
        assert answer.status_code in (200, 204), answer.text

    return run


async def test_postgres_logout_password_change_role_change_and_key_revocation_reach_every_process(
    db: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    await _revocations_reach_every_worker(db, settings.database_url, tmp_path)


async def test_sqlite_logout_password_change_role_change_and_key_revocation_reach_every_process(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'clinicflow.db'}"
    local = make_test_settings(database_url=database_url)
    await asyncio.to_thread(migrate.upgrade, local)  # alembic runs its own event loop
    app = create_app(local)
    async with app.router.lifespan_context(app):
        await _revocations_reach_every_worker(app, database_url, tmp_path / "served")


async def _revocations_reach_every_worker(db: FastAPI, database_url: str, workdir: Path) -> None:
    owner = await make_member(db, role="owner")
    leaving = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    demoted = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    two_devices = await make_member(db, role="assistant", tenant_id=owner.tenant_id)
    key = await make_api_key(db, owner.tenant_id, ["patients:read"])
    with serve(database_url, workdir) as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
            login = await client.post(
                "/api/v1/auth/login",
                json={"username": two_devices.email, "password": DEFAULT_PASSWORD},
            )
            assert login.status_code == 200, login.text
            keys = await client.get("/api/v1/api-keys", headers=owner.headers)
        other_device = {"Authorization": f"Bearer {login.json()['access_token']}"}
        [key_id] = [item["id"] for item in keys.json()["items"]]
        patients, finance = "/api/v1/patients", "/api/v1/financial-entries"
        revocations = {
            "logout": Revocation(
                patients, leaving.headers, 401,
                _call(served, "POST", "/api/v1/auth/logout", leaving.headers),
            ),
            "password change": Revocation(
                patients, other_device, 401,
                _call(
                    served, "POST", "/api/v1/users/me/change-password", two_devices.headers,
                    current_password=DEFAULT_PASSWORD, new_password="a-new-Passphrase-2026",
                ),
            ),
            "role change": Revocation(
                finance, demoted.headers, 403,
                _call(
                    served, "PATCH", f"/api/v1/tenant/members/{demoted.user_id}",
                    owner.headers, role="viewer",
                ),
            ),
            "key revoked": Revocation(
                patients, {"X-API-Key": key}, 401,
                _call(served, "DELETE", f"/api/v1/api-keys/{key_id}", owner.headers),
            ),
        }  # fmt: skip
        stale = await _stale_seconds(served, revocations)
    assert all(seconds <= BOUND_SECONDS for seconds in stale.values()), stale
    print(f"longest stale answer after each change (s): {stale}")

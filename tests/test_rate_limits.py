"""Rate limits: 429 with Retry-After per IP, per account and per client; shared through Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from limits import RateLimitItem
from redis.asyncio import Redis

from clinicflow.core import migrate, ratelimit
from clinicflow.core.ratelimit import LEASE_MAX, RateLimited, RateLimiter
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from tests import documented_statuses, services
from tests.conftest import make_test_settings
from tests.factories import Member, make_member
from tests.served import serve

REDIS_URL = services.redis_url()  # the real Redis, or the run's throwaway one


@asynccontextmanager
async def limited_client(
    settings: Settings, ip: str = "192.0.2.1", **limits: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"rate_limit_enabled": True, **limits}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=documented_statuses.recording(app), client=(ip, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_login_is_limited_per_account_whatever_the_ip(
    db: FastAPI, settings: Settings
) -> None:
    member = await make_member(db)
    body = {"username": member.email, "password": "wrong-password"}
    app = create_app(
        settings.model_copy(
            update={"rate_limit_enabled": True, "rate_limit_login_account": "3/minute"}
        )
    )
    answers = []
    async with app.router.lifespan_context(app):
        for attempt in range(4):
            transport = httpx.ASGITransport(
                app=documented_statuses.recording(app), client=(f"192.0.2.{attempt}", 1234)
            )
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                answers.append(await client.post("/api/v1/auth/login", json=body))
    assert [r.status_code for r in answers] == [401, 401, 401, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].headers["content-type"] == "application/problem+json"


async def test_login_is_limited_per_ip_across_accounts(db: FastAPI, settings: Settings) -> None:
    async with limited_client(settings, rate_limit_login_ip="2/minute") as client:
        answers = [
            await client.post(
                "/api/v1/auth/login", json={"username": f"u{n}@example.com", "password": "x" * 9}
            )
            for n in range(3)
        ]
    assert [r.status_code for r in answers] == [401, 401, 429]


async def test_forgot_password_is_limited_per_email(db: FastAPI, settings: Settings) -> None:
    async with limited_client(settings, rate_limit_forgot_account="2/hour") as client:
        body = {"email": "someone@example.com"}
        answers = [await client.post("/api/v1/auth/forgot-password", json=body) for _ in range(3)]
    assert [r.status_code for r in answers] == [202, 202, 429]


async def test_default_limit_per_client(db: FastAPI, settings: Settings) -> None:
    member = await make_member(db)
    async with limited_client(settings, rate_limit_default="3/minute") as client:
        answers = [await client.get("/api/v1/auth/me", headers=member.headers) for _ in range(4)]
        other_client = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer x"})
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert other_client.status_code == 401  # another credential has its own budget


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as error:
        pytest.fail(f"Redis is needed at {REDIS_URL} (CLINICFLOW_TEST_REDIS): {error}")
    yield REDIS_URL
    await client.flushdb()
    await client.aclose()


async def test_limits_are_shared_between_workers_through_redis(
    db: FastAPI, settings: Settings, redis_url: str
) -> None:
    account = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    body = {"username": account, "password": "wrong-password"}
    shared = {"redis_url": redis_url, "rate_limit_login_account": "2/minute"}
    async with (
        limited_client(settings, **shared) as worker_a,
        limited_client(settings, ip="192.0.2.99", **shared) as worker_b,
    ):
        first = await worker_a.post("/api/v1/auth/login", json=body)
        second = await worker_b.post("/api/v1/auth/login", json=body)
        third = await worker_a.post("/api/v1/auth/login", json=body)
    assert (first.status_code, second.status_code, third.status_code) == (401, 401, 429)


async def test_random_credentials_per_request_are_limited_on_the_client_ip(
    db: FastAPI, settings: Settings
) -> None:
    """The bypass: a made-up bearer token or API key per request minted a fresh budget each."""
    async with limited_client(settings) as client:  # the shipped limits
        statuses = [
            (
                await client.get(
                    "/api/v1/auth/me", headers={"Authorization": f"Bearer {uuid.uuid4().hex}"}
                )
            ).status_code
            for _ in range(700)
        ]
    assert statuses[0] == 401
    assert 429 in statuses
    assert statuses.index(429) <= 121  # the anonymous budget: 120 a minute per IP


async def test_made_up_api_keys_on_a_public_route_still_spend_the_ip_budget(
    db: FastAPI, settings: Settings
) -> None:
    """reset-password never checks the key: its own per-IP limit holds whatever headers come."""
    async with limited_client(settings, rate_limit_public_links="5/minute") as client:
        statuses = [
            (
                await client.post(
                    "/api/v1/auth/reset-password",
                    json={"token": "nope", "new_password": "k9#vQ2pX-long"},
                    headers={"X-API-Key": f"cf_live_{uuid.uuid4().hex}"},
                )
            ).status_code
            for _ in range(8)
        ]
    assert statuses == [404] * 5 + [429] * 3


async def test_a_verified_caller_spends_its_own_budget_not_its_ips(
    db: FastAPI, settings: Settings
) -> None:
    member = await make_member(db)
    async with limited_client(
        settings, rate_limit_anonymous="2/minute", rate_limit_default="4/minute"
    ) as client:
        answers = [
            (await client.get("/api/v1/auth/me", headers=member.headers)).status_code
            for _ in range(5)
        ]
    assert answers == [200, 200, 200, 200, 429]  # a clinic behind one NAT is not one client


async def test_sign_up_has_a_limit_of_its_own(db: FastAPI, settings: Settings) -> None:
    async with limited_client(settings, rate_limit_register="2/hour") as client:
        answers = [
            await client.post(
                "/api/v1/auth/register",
                json={
                    "email": f"new-{n}@example.com",
                    "password": "k9#vQ2pX-long-enough",
                    "full_name": "New Person",
                    "practice_name": f"Practice {n}",
                },
            )
            for n in range(3)
        ]
    assert [answer.status_code for answer in answers] == [201, 201, 429]


async def _spend(limiter: RateLimiter, key: str, times: int) -> int:
    """How many of `times` requests of one caller the default budget lets through."""
    allowed = 0
    for _ in range(times):
        try:
            await limiter.check_leased(limiter.default, "caller", key)
        except RateLimited:
            continue
        allowed += 1
    return allowed


async def test_a_busy_callers_budget_is_drawn_in_batches_and_never_exceeded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RateLimiter(
        settings.model_copy(
            update={"rate_limit_enabled": True, "rate_limit_default": "1200/minute"}
        )
    )
    draws: list[int] = []
    hit = limiter._limiter.hit

    async def counted(item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        draws.append(cost)
        return await hit(item, *identifiers, cost=cost)

    monkeypatch.setattr(limiter._limiter, "hit", counted)
    assert await _spend(limiter, "busy", 1200) == 1200
    # 1,200 requests cost about 130 draws on the shared counters, not 1,200.
    assert len(draws) < 200
    assert set(draws) == {1, LEASE_MAX}
    assert await _spend(limiter, "busy", 100) == 0


async def test_batches_drawn_by_several_workers_never_exceed_the_budget(
    settings: Settings, redis_url: str
) -> None:
    shared = settings.model_copy(
        update={
            "rate_limit_enabled": True,
            "rate_limit_default": "600/minute",
            "redis_url": redis_url,
        }
    )
    workers = [RateLimiter(shared), RateLimiter(shared)]
    key = uuid.uuid4().hex
    allowed = 0
    for _ in range(70):  # bursts alternating between the workers, each leaving a batch unspent
        for worker in workers:
            allowed += await _spend(worker, key, 13)
    # Never more than the budget; at most a batch per worker less than it.
    assert 600 - len(workers) * (LEASE_MAX - 1) <= allowed <= 600


async def test_an_unreachable_redis_fails_open_once_for_a_callers_waiting_requests(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent requests of a busy caller wait for one draw; when Redis does not answer that
    draw, they all go through (the limiter fails open) instead of each waiting for Redis in
    turn."""
    limiter = RateLimiter(
        settings.model_copy(update={"rate_limit_enabled": True, "rate_limit_default": "600/minute"})
    )
    assert await _spend(limiter, "outage", LEASE_MAX) == LEASE_MAX  # busy: batches from now on
    draws = 0

    async def unreachable(item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        nonlocal draws
        draws += 1
        await asyncio.sleep(0.05)  # a connect timeout, shortened
        raise ConnectionError("redis unreachable")

    monkeypatch.setattr(limiter._limiter, "hit", unreachable)
    waiting = 3 * LEASE_MAX
    allowed = await asyncio.gather(*(_spend(limiter, "outage", 1) for _ in range(waiting)))
    assert sum(allowed) == waiting
    assert draws <= 3  # a batch's worth of requests per failed draw, not one draw each


async def test_while_redis_is_down_logins_are_still_limited_in_each_process(
    settings: Settings,
) -> None:
    """Failing open for a login would leave password guessing unlimited during an outage:
    each process counts on its own until Redis answers again."""
    limiter = RateLimiter(
        settings.model_copy(
            update={
                "rate_limit_enabled": True,
                "redis_url": "redis://127.0.0.1:1/0",
                "rate_limit_login_account": "3/minute",
            }
        )
    )
    for _ in range(3):
        await limiter.check(limiter.login_account, "login-account", "someone")
    with pytest.raises(RateLimited) as refused:
        await limiter.check(limiter.login_account, "login-account", "someone")
    assert int(refused.value.headers["Retry-After"]) >= 1


async def test_a_lease_whose_draw_is_in_flight_survives_eviction(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evicting idle leases (once the table is full) keeps the one a draw is running for, so
    the caller's next requests wait for that draw and share its batch instead of spending
    the budget again beside it."""
    monkeypatch.setattr(ratelimit, "_LEASES_KEPT", 2)
    limiter = RateLimiter(
        settings.model_copy(update={"rate_limit_enabled": True, "rate_limit_default": "600/minute"})
    )
    assert await _spend(limiter, "busy", LEASE_MAX) == LEASE_MAX  # busy: batches from now on
    answer = asyncio.Event()
    busy_hits = 0
    hit = limiter._limiter.hit

    async def slow(item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        nonlocal busy_hits
        busy_hits += identifiers[-1] == "busy"
        await answer.wait()
        return await hit(item, *identifiers, cost=cost)

    monkeypatch.setattr(limiter._limiter, "hit", slow)
    # The batch drawn above is spent; the next request's draw waits for Redis.
    first = asyncio.gather(*(_spend(limiter, "busy", 1) for _ in range(LEASE_MAX)))
    await asyncio.sleep(0.01)
    for lease in limiter._leases.values():
        lease.since -= 10  # idle, as far as eviction can tell
    others = asyncio.gather(*(_spend(limiter, other, 1) for other in ("a", "b")))  # evicts
    await asyncio.sleep(0.01)
    later = asyncio.gather(*(_spend(limiter, "busy", 1) for _ in range(5)))
    await asyncio.sleep(0.01)
    answer.set()
    assert sum(await first) + sum(await later) == LEASE_MAX + 5
    await others
    assert busy_hits == 1  # the one batch served them all


async def test_a_small_budget_is_charged_request_by_request(settings: Settings) -> None:
    limiter = RateLimiter(
        settings.model_copy(update={"rate_limit_enabled": True, "rate_limit_default": "30/minute"})
    )
    assert await _spend(limiter, "modest", 40) == 30


async def _hammer_served(database_url: str, member: Member, redis_url: str, workdir: Path) -> None:
    """`clinicflow serve --workers 2`, 16 separate clients sending 720 requests with one
    login against a 600/minute budget: the batches both processes draw from the shared budget
    never add up to more than it, and fall short of it by at most a batch per process."""
    limits = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_DEFAULT": "600/minute"}
    with serve(database_url, workdir, REDIS_URL=redis_url, **limits) as served:

        async def one_client() -> list[int]:
            async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
                return [
                    (await client.get("/api/v1/auth/me", headers=member.headers)).status_code
                    for _ in range(45)
                ]

        statuses = [
            status for client in await asyncio.gather(*(one_client() for _ in range(16)))
            for status in client
        ]  # fmt: skip
        log = served.log()
    assert "Traceback" not in log
    allowed = statuses.count(200)
    assert allowed + statuses.count(429) == 720
    # On failure, what the workers said about the shared counters (a Redis timeout makes a
    # worker count alone for a while).
    said = [line for line in log.splitlines() if "rate_limit" in line][:5]
    assert 600 - 2 * (LEASE_MAX - 1) <= allowed <= 600, (allowed, said)


async def test_two_served_workers_never_let_a_caller_past_its_budget(
    db: FastAPI, settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    owner = await make_member(db, role="owner")
    await _hammer_served(settings.database_url, owner, redis_url, tmp_path)


async def test_two_served_workers_on_sqlite_never_let_a_caller_past_its_budget(
    redis_url: str, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'clinicflow.db'}"
    local = make_test_settings(database_url=database_url)
    await asyncio.to_thread(migrate.upgrade, local)  # alembic runs its own event loop
    app = create_app(local)
    async with app.router.lifespan_context(app):
        owner = await make_member(app, role="owner")
    await _hammer_served(database_url, owner, redis_url, tmp_path / "served")

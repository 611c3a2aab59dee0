"""Rate limits (SPEC §4): login and password reset per IP and per account, a default per
client; 429 with Retry-After. Counters live in Redis when REDIS_URL is set (shared by every
worker), in memory otherwise, and in each process's memory while Redis does not answer. The
`limits` library does the windowing."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

import structlog
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from clinicflow.core.errors import ClinicFlowError
from clinicflow.core.settings import Settings

logger = structlog.get_logger("clinicflow.ratelimit")


class RateLimited(ClinicFlowError):
    status_code: ClassVar[int] = 429
    title: ClassVar[str] = "Too many requests"
    slug: ClassVar[str] = "rate-limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many requests; try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
            extra={"retry_after": retry_after},
        )


def _storage(settings: Settings) -> Storage:
    if settings.redis_url:
        uri = "async+" + settings.redis_url
        storage = storage_from_string(uri, implementation="redispy")
        assert isinstance(storage, Storage)
        return storage
    return MemoryStorage()


# A busy caller's budget is drawn from the shared counters in batches: one Redis script per
# LEASE_MAX requests instead of one per request (it was a tenth of a read's cost). A batch is
# charged in full up front, so a caller never gets more than its budget; what a process leaves
# unspent when a burst ends (at most LEASE_MAX - 1, and only after a burst of at least that
# many requests within LEASE_SECONDS) refuses the caller that much early. Small budgets, where
# one batch would be a noticeable share, are charged one request at a time.
LEASE_MAX = 10
LEASE_SECONDS = 1.0
_LEASES_KEPT = 10_000


@dataclass(slots=True)
class _Lease:
    """What this process drew of one caller's budget, and how busy the caller is here."""

    left: int = 0
    expires: float = 0.0
    recent: int = 0  # hits since `since`
    since: float = 0.0
    # One draw at a time per caller and process: the caller's concurrent requests wait for it
    # and share the batch (each drawing its own spent up to a batch per request, and refused
    # the caller at a third of its budget under 16 concurrent clients).
    drawing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def take(self, now: float) -> bool:
        if self.left > 0 and self.expires > now:
            self.left -= 1
            return True
        return False


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self._leases: dict[str, _Lease] = {}
        # Two counters per key (this window and the last, weighted): O(1) in Redis and one cheap
        # script per hit, where a moving window keeps and scans a list entry per request.
        self._limiter = SlidingWindowCounterRateLimiter(_storage(settings))
        # While Redis is out, each process counts on its own: budgets multiplied by the number
        # of workers, but login and reset stay limited instead of open to guessing.
        self._fallback = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.default = parse(settings.rate_limit_default)
        self.anonymous = parse(settings.rate_limit_anonymous)
        self.register = parse(settings.rate_limit_register)
        self.token_refresh = parse(settings.rate_limit_refresh)
        self.public_links = parse(settings.rate_limit_public_links)
        self.profile = parse(settings.rate_limit_profile)
        self.login_ip = parse(settings.rate_limit_login_ip)
        self.login_account = parse(settings.rate_limit_login_account)
        self.reset_ip = parse(settings.rate_limit_forgot_ip)
        self.reset_account = parse(settings.rate_limit_forgot_account)

    async def per_ip(self, request: Request, item: RateLimitItem, scope: str) -> None:
        await self.check(item, scope, client_ip(request))

    async def check(self, item: RateLimitItem, scope: str, key: str) -> None:
        if not self.enabled:
            return
        limiter = self._limiter
        try:
            allowed = await limiter.hit(item, scope, key)
        except Exception as error:  # a shared-counter outage must not take the API down
            logger.warning("rate_limit_unavailable", error=type(error).__name__)
            limiter = self._fallback
            allowed = await limiter.hit(item, scope, key)
        if allowed:
            return
        try:
            stats = await limiter.get_window_stats(item, scope, key)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:  # the outage began between the two calls: a window's worth
            retry_after = item.get_expiry()
        raise RateLimited(retry_after)

    async def check_leased(self, item: RateLimitItem, scope: str, key: str) -> None:
        """`check` for a budget a caller may spend fast (see LEASE_MAX)."""
        if not self.enabled:
            return
        batch = min(LEASE_MAX, item.amount // 60)
        if batch <= 1:
            await self.check(item, scope, key)
            return
        now = time.monotonic()
        lease = self._lease(f"{scope}:{key}", now)
        if lease.take(now):
            return
        async with lease.drawing:
            now = time.monotonic()
            if lease.take(now):  # a draw this request waited for refilled the lease
                return
            if lease.recent >= batch:
                try:
                    drawn = await self._limiter.hit(item, scope, key, cost=batch)
                except Exception as error:  # as in `check`: counted in this process, for a
                    # whole batch, so the requests waiting on this draw do not each wait for Redis
                    logger.warning("rate_limit_unavailable", error=type(error).__name__)
                    drawn = await self._fallback.hit(item, scope, key, cost=batch)
                if drawn:
                    lease.left, lease.expires = batch - 1, now + LEASE_SECONDS
                    return
                lease.recent, lease.since = 0, now  # the budget is nearly spent: no batch now
        await self.check(item, scope, key)  # not busy, or near the limit: one at a time, exact

    def _lease(self, name: str, now: float) -> _Lease:
        lease = self._leases.get(name)
        if lease is None:
            if len(self._leases) >= _LEASES_KEPT:
                self._leases = {
                    k: v
                    for k, v in self._leases.items()
                    if v.since > now - 1 or v.drawing.locked()  # a draw in flight keeps its lease
                }
            lease = self._leases[name] = _Lease(since=now)
        if now - lease.since > LEASE_SECONDS:
            lease.recent, lease.since = 0, now
        lease.recent += 1
        return lease

    async def login(self, request: Request, account: str) -> None:
        await self.check(self.login_ip, "login-ip", client_ip(request))
        await self.check(self.login_account, "login-account", _digest(account.strip().lower()))

    async def password_reset(self, request: Request, account: str | None) -> None:
        await self.check(self.reset_ip, "reset-ip", client_ip(request))
        if account:
            await self.check(self.reset_account, "reset-account", _digest(account.strip().lower()))


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _digest(value: str) -> str:
    """Keys never hold e-mails or tokens in clear (they may sit in a shared Redis)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


_SETTLED = "rate_limit_settled"


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def presents_credentials(request: Request) -> bool:
    return bool(request.headers.get("authorization") or request.headers.get("x-api-key"))


async def default_rate_limit(request: Request) -> None:
    """Every API route's budget. A request without credentials spends its IP's. One with
    credentials is charged by the auth dependency once they are checked: verified, the caller's
    own budget (its session or API key); refused, the IP's. So a made-up header per request buys
    nothing. Public routes, which never check credentials, have dedicated per-IP limits
    (`limit_public`)."""
    limiter = _limiter(request)
    if presents_credentials(request):
        setattr(request.state, _SETTLED, False)
        return
    setattr(request.state, _SETTLED, True)
    await limiter.per_ip(request, limiter.anonymous, "anonymous")


async def charge_verified(request: Request, caller: str) -> None:
    """The caller's credentials were verified: its own budget (REST and /mcp alike)."""
    setattr(request.state, _SETTLED, True)
    limiter = _limiter(request)
    await limiter.check_leased(limiter.default, "caller", _digest(caller))


async def charge_refused(request: Request) -> None:
    """Credentials that did not verify cost the client's IP, never a budget of their own."""
    if not getattr(request.state, _SETTLED, False):  # not yet charged for this request
        setattr(request.state, _SETTLED, True)
        limiter = _limiter(request)
        await limiter.per_ip(request, limiter.anonymous, "anonymous")


def limit_public(name: str) -> Callable[[Request], Awaitable[None]]:
    """A dedicated per-IP limit for a public route that costs us (a hash, an e-mail, a lookup):
    `dependencies=[Depends(limit_public("register"))]`."""

    async def dependency(request: Request) -> None:
        limiter = _limiter(request)
        await limiter.per_ip(request, getattr(limiter, name), name)

    dependency.__name__ = f"limit_{name}"
    return dependency

"""A short-lived cache of n8n figures per practice: Redis when configured (shared by every
worker), memory otherwise. n8n is slow and rate-limited; dashboards poll."""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis

from clinicflow.core.settings import Settings


class MetricsCache(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str) -> None: ...


class MemoryCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, str]] = {}

    async def get(self, key: str) -> str | None:
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    async def put(self, key: str, value: str) -> None:
        if len(self._entries) > 10_000:  # bounded: drop what has expired
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
        self._entries[key] = (time.monotonic() + self.ttl, value)


class RedisCache:
    def __init__(self, url: str, ttl_seconds: float) -> None:
        self.redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self.ttl = max(1, int(ttl_seconds))

    async def get(self, key: str) -> str | None:
        value = await self.redis.get(key)
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, key: str, value: str) -> None:
        await self.redis.set(key, value, ex=self.ttl)


def metrics_cache(settings: Settings) -> MetricsCache:
    if settings.redis_url:
        return RedisCache(settings.redis_url, settings.n8n_cache_seconds)
    return MemoryCache(settings.n8n_cache_seconds)

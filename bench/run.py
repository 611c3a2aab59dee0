"""Request-path benchmarks, printed as figures with a baseline measured in the same run.

    python bench/run.py [--requests 2000] [--concurrency 10] [--database-url URL]

Without --database-url it builds a throw-away SQLite database; with one (an empty PostgreSQL
database the owner can migrate, e.g. postgresql://postgres@127.0.0.1/cf_bench) it migrates it.
In-process (httpx ASGI transport): it measures the application, not the network or a server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from tests.factories import make_member

from clinicflow.core import migrate
from clinicflow.core.settings import Settings
from clinicflow.main import create_app


async def measure(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], total: int, concurrency: int
) -> tuple[float, float, float]:
    """Returns (requests per second, p50 ms, p95 ms)."""
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            response = await client.get(path, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=20)
    return total / elapsed, statistics.median(latencies), quantiles[18]


async def run(total: int, concurrency: int, database_url: str) -> None:
    # The limiter stays on (its cost is part of the path) with a budget the run cannot exhaust.
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        log_level="WARNING",
        rate_limit_default="1000000/minute",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        member = await make_member(app, role="owner")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await measure(client, "/health", {}, 50, 1)  # warm-up
            rows = [
                (
                    "GET /health (baseline)",
                    await measure(client, "/health", {}, total, concurrency),
                ),
                (
                    "GET /api/v1/auth/me (JWT + session + membership)",
                    await measure(client, "/api/v1/auth/me", member.headers, total, concurrency),
                ),
            ]
    baseline = rows[0][1][0]
    backend = database_url.split(":", 1)[0]
    print(f"{total} requests, concurrency {concurrency}, database {backend}")
    print(f"{'path':52} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'vs baseline':>12}")
    for name, (rps, p50, p95) in rows:
        print(f"{name:52} {rps:8.0f} {p50:8.2f} {p95:8.2f} {rps / baseline:11.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        migrate.upgrade(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
        asyncio.run(run(args.requests, args.concurrency, url))


if __name__ == "__main__":
    main()

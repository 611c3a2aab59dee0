"""Load generators that run in their own process, so they never share a core's event loop with
what they measure: a raw HTTP/1.1 keep-alive client (far cheaper per request than httpx) and a
raw asyncpg client for the database baseline.

Each returns a `Sample`: latencies in milliseconds, the wall time, and any failures.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# One HTTP request, ready to write: method, path, headers, body.
HttpRequest = tuple[str, str, dict[str, str], bytes]
# One database "request": statements run in a transaction after set_config(tenant).
SqlRequest = list[tuple[str, tuple[Any, ...]]]


@dataclass(slots=True)
class Sample:
    latencies: list[float] = field(default_factory=list)  # ms
    seconds: float = 0.0
    failures: int = 0
    first_failure: str = ""
    # How the server's worker processes shared the run's connections, one entry per run
    # ("12/4": 12 on one worker, 4 on the other): set by the caller that can see the server.
    splits: list[str] = field(default_factory=list)

    def absorb(self, other: Sample) -> None:
        """Add another measurement of the same thing (a later round) to this one."""
        self.latencies += other.latencies
        self.seconds += other.seconds
        self.failures += other.failures
        self.first_failure = self.first_failure or other.first_failure
        self.splits += other.splits

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=1000, method="inclusive")[round(q * 1000) - 1]


def encode(request: HttpRequest, host: str) -> bytes:
    method, path, headers, body = request
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection") == "close"


# Clients connect 2 ms apart, as clients arrive, not all in one instant: uvicorn's workers
# share one listening socket, and the first to wake accepts every connection already waiting,
# so a burst of 16 landed 16/0 as often as 8/8 (half the throughput, twice the p99, for the
# app and the reference alike). Spread out, each connection goes to whichever worker wakes
# for it.
CONNECT_SPACING = 0.002


async def _http(
    host: str,
    port: int,
    requests: Sequence[HttpRequest],
    clients: int,
    seconds: float,
    cycle: bool,
    ok: frozenset[int],
    rate: float | None,
) -> Sample:
    encoded = [encode(request, f"{host}:{port}") for request in requests]
    source: Iterator[bytes] = itertools.cycle(encoded) if cycle else iter(encoded)
    sample = Sample()
    deadline = time.perf_counter() + seconds

    async def one_client(pace: Callable[[], float] | None, index: int) -> None:
        await asyncio.sleep(index * CONNECT_SPACING)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (now := time.perf_counter()) < deadline:
                if pace is not None:
                    due = pace()
                    if due > deadline:
                        return
                    await asyncio.sleep(max(0.0, due - now))
                payload = next(source, None)
                if payload is None:
                    return
                started = time.perf_counter()
                writer.write(payload)
                try:
                    status, body, close = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError) as error:
                    status, body, close = 0, repr(error).encode(), True
                if status in ok:
                    sample.latencies.append((time.perf_counter() - started) * 1000)
                else:
                    sample.failures += 1
                    sample.first_failure = sample.first_failure or f"{status} {body[:300]!r}"
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    pace: Callable[[], float] | None = None
    if rate is not None:  # open loop: request i is due at start + i / rate, whoever is free
        ticks = itertools.count()
        start = time.perf_counter()

        def pace() -> float:
            return start + next(ticks) / rate

    started = time.perf_counter()
    await asyncio.gather(*(one_client(pace, index) for index in range(clients)))
    sample.seconds = time.perf_counter() - started
    return sample


async def _sql(
    dsn: str, tenant: str, requests: Sequence[SqlRequest], clients: int, seconds: float
) -> Sample:
    import asyncpg  # type: ignore[import-untyped]

    source = itertools.cycle(requests)
    sample = Sample()
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
    deadline = time.perf_counter() + seconds

    async def one_client() -> None:
        async with pool.acquire() as connection:
            while time.perf_counter() < deadline:
                statements = next(source)
                started = time.perf_counter()
                try:
                    async with connection.transaction():
                        await connection.execute(
                            "SELECT set_config('app.tenant_id', $1, true)", tenant
                        )
                        for sql, args in statements:
                            await connection.fetch(sql, *args)
                except Exception as error:
                    sample.failures += 1
                    sample.first_failure = sample.first_failure or repr(error)[:300]
                    continue
                sample.latencies.append((time.perf_counter() - started) * 1000)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        sample.seconds = time.perf_counter() - started
    finally:
        await pool.close()
    return sample


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover  (Windows)
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _child(conn: Any, kind: str, arguments: tuple[Any, ...]) -> None:
    _use_uvloop()
    try:
        if kind == "http":
            result: Sample | str = asyncio.run(_http(*arguments))
        else:
            result = asyncio.run(_sql(*arguments))
    except Exception as error:
        result = repr(error)
    conn.send(result)
    conn.close()


class Running:
    """A load generator process started in the background; `result()` waits for its sample."""

    def __init__(self, kind: str, arguments: tuple[Any, ...]) -> None:
        context = multiprocessing.get_context("spawn")
        self.parent, child = context.Pipe(duplex=False)
        self.process = context.Process(target=_child, args=(child, kind, arguments))
        self.process.start()

    def result(self) -> Sample:
        outcome = self.parent.recv()
        self.process.join()
        if isinstance(outcome, str):
            raise RuntimeError(f"load generator failed: {outcome}")
        sample: Sample = outcome
        return sample


def http(
    port: int,
    requests: Sequence[HttpRequest],
    *,
    clients: int,
    seconds: float,
    cycle: bool = True,
    ok: frozenset[int] = frozenset({200, 201}),
    rate: float | None = None,
    host: str = "127.0.0.1",
) -> Running:
    return Running("http", (host, port, list(requests), clients, seconds, cycle, ok, rate))


def sql(
    dsn: str, tenant: str, requests: Sequence[SqlRequest], *, clients: int, seconds: float
) -> Running:
    return Running("sql", (dsn, tenant, list(requests), clients, seconds))

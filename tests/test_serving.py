"""`clinicflow serve --workers N` spreads connections over its workers (`clinicflow.serving`):
each worker listens on a socket of its own, so a burst of connections is not all accepted by
whichever worker woke first. Read from /proc, as the kernel sees the processes (Linux)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clinicflow.core.settings import Settings
from tests.served import CLINICFLOW, free_port, serve, server_environment

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="one socket per worker is Linux's SO_REUSEPORT"
)
LISTEN, ESTABLISHED = "0A", "01"
CONNECTIONS = 32


def _server_sockets(port: int, state: str) -> set[str]:
    """Inodes of the sockets whose local port is `port`, in `state` (IPv4)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def _held_by(pid: int) -> set[str]:
    """Inodes of the sockets a process has open."""
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:  # closed since listed
            continue
        if target.startswith("socket:["):
            held.add(target[len("socket:[") : -1])
    return held


def _workers(supervisor: int) -> list[int]:
    """The supervisor's children but multiprocessing's resource tracker."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [
        int(child)
        for child in children
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _accepted(workers: list[int], port: int) -> list[int]:
    established = _server_sockets(port, ESTABLISHED)
    return [len(_held_by(worker) & established) for worker in workers]


async def test_each_worker_listens_on_its_own_socket_and_a_burst_is_shared(
    settings: Settings, tmp_path: Path
) -> None:
    with serve(settings.database_url, tmp_path, workers=2) as served:
        port = int(served.base_url.rsplit(":", 1)[1])
        workers = _workers(served.pid)
        await asyncio.sleep(1)  # the supervisor's round that closes its own copies
        listening = _server_sockets(port, LISTEN)
        own = [_held_by(worker) & listening for worker in workers]
        supervisor_holds = _held_by(served.pid) & listening

        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        try:
            deadline = time.monotonic() + 10
            while sum(accepted := _accepted(workers, port)) < CONNECTIONS:
                assert time.monotonic() < deadline, f"accepted {accepted} of {CONNECTIONS}"
                await asyncio.sleep(0.05)
        finally:
            for client in clients:
                client.close()

    assert len(workers) == 2
    assert all(len(sockets) == 1 for sockets in own)
    assert own[0] != own[1]
    assert supervisor_holds == set()  # a dead worker's socket closes with it
    # The kernel hashes connections over the two sockets: 32 fall at worst 28/4 but once in
    # ~90,000 runs. On one shared socket the first worker to wake took most of a burst.
    assert min(accepted) >= 4, accepted


async def test_serve_refuses_a_port_another_server_listens_on(
    settings: Settings, tmp_path: Path
) -> None:
    """Sockets sharing a port with SO_REUSEPORT would share it with another server doing so
    (an old version left running): a port in use is refused, as uvicorn alone refuses it."""
    port = free_port()
    with socket.create_server(("127.0.0.1", port), reuse_port=True):
        started = await asyncio.to_thread(
            subprocess.run,
            [CLINICFLOW, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=tmp_path, env=server_environment(settings.database_url, tmp_path),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert started.returncode != 0
    assert "Address already in use" in started.stdout + started.stderr

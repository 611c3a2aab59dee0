"""Serve an ASGI app with uvicorn, with one listening socket per worker process on Linux.

uvicorn's worker processes accept from one socket they share, and the worker that wakes first
accepts every connection waiting. The 16 keep-alive connections of a load test (or of a
proxy's upstream pool) landed 16/0, 15/1 or 13/3 on two workers as often as 8/8, and one
worker holding them all is one core doing the work of two: half the throughput, twice the p99
(bench/README.md). With SO_REUSEPORT each worker listens on a socket of its own, bound to the
same address, and the kernel spreads new connections over them by hashing each connection's
addresses. uvicorn's supervisor still starts, health-checks, restarts and stops the workers.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

logger = logging.getLogger("uvicorn.error")


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, host=…, port=…, workers=…, **options)`, with a socket per worker
    where the kernel balances them (Linux); elsewhere, with one worker or reloading (one
    process watched for changes), uvicorn's own way."""
    if workers < 2 or options.get("reload") or not sys.platform.startswith("linux"):
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    _refuse_address_in_use(host, port)
    logger.info(
        "Uvicorn running on %s:%d, one socket per worker (Press CTRL+C to quit)", host, port
    )
    _SocketPerWorker(config).run()


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, address


def _refuse_address_in_use(host: str, port: int) -> None:
    """Sockets that share a port with SO_REUSEPORT also share it with any other server of the
    same user doing so (an old version still running): bound without it first, a port taken
    in any way is refused, as uvicorn refuses it."""
    family, address = _address(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            logger.error("%s", error)
            sys.exit(1)


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket of the SO_REUSEPORT group of host:port, listening."""
    family, address = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class _SocketPerWorker(Multiprocess):
    """uvicorn's supervisor, reading `sockets` once for each worker it starts: each read binds
    a fresh socket for that worker. The worker inherits it as it starts; the supervisor closes
    its own copy on its next round (every half second), so the socket of a worker that dies
    closes with it instead of queueing connections no process accepts."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._handed: list[socket.socket] = []
        super().__init__(config, sockets=[])

    @property
    def sockets(self) -> list[socket.socket]:
        sock = listening_socket(self.config.host, self.config.port, self.config.backlog)
        self._handed.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, shared: list[socket.socket]) -> None:
        """uvicorn's constructor stores the sockets its workers share: there are none."""

    def keep_subprocess_alive(self) -> None:
        while self._handed:  # every worker started so far holds its socket by now
            self._handed.pop().close()
        super().keep_subprocess_alive()

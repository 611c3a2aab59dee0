"""A resolver that rebinds (DNS rebinding): for one host name it answers a public address,
then the given private one, alternately, as an attacker's name server with a zero TTL can.
Other names resolve as usual. It replaces `socket.getaddrinfo`, which asyncio's resolver
calls in a thread, for the length of a test."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import pytest

PUBLIC_ADDRESS = "93.184.215.14"  # a global address; nothing in these tests connects to it


@dataclass
class RebindingResolver:
    host: str
    private_address: str
    answers: list[str] = field(default_factory=list)  # each lookup of `host`, in order

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        resolve = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host  # anyio passes bytes
            if name != self.host:
                return resolve(host, port, *args, **kwargs)
            public = len(self.answers) % 2 == 0
            self.answers.append(PUBLIC_ADDRESS if public else self.private_address)
            return resolve(self.answers[-1], port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

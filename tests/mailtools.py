"""A real SMTP server for tests (aiosmtpd on a free port) and worker processes to race it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """Keeps every message; `refuse_next` answers that many DATA commands with a failure."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = 0
        self.refuse_next = 0
        self.refused = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_next:
            self.refuse_next -= 1
            self.refused += 1
            return "451 Try again later"
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]


def running_inbox() -> Iterator[Inbox]:
    handler = Inbox()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


def start_worker(
    database_url: str, smtp_port: int, cwd: Path, **settings: str
) -> subprocess.Popen[bytes]:
    """`clinicflow worker` as its own process, as an operator would run it."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL",)}
    env.update(
        {
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "test",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "SMTP_TLS": "none",
            "LOG_LEVEL": "WARNING",
            "WORKER_POLL_SECONDS": "0.1",
        }
    )
    env.update({key.upper(): value for key, value in settings.items()})
    command = [str(Path(sys.executable).parent / "clinicflow"), "worker"]
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL)  # noqa: S603


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

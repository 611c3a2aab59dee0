"""Real servers for tests on free ports (SMTP via aiosmtpd, a webhook receiver) and worker
processes to race them."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

    def last_to(self, address: str) -> Message:
        found = [m for m in self.messages if address in str(m["To"])]
        assert found, f"no e-mail to {address}"
        return found[-1]

    def link_token(self, address: str) -> str:
        """The token of the link in the newest e-mail to `address`."""
        message = self.last_to(address)
        parts = [
            p.get_payload(decode=True).decode() for p in message.walk() if not p.is_multipart()
        ]
        tokens = {match for part in parts for match in re.findall(r"token=([\w-]+)", part)}
        assert len(tokens) == 1, tokens  # text and HTML parts carry the same link
        return tokens.pop()


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


class Receiver:
    """A webhook receiver on a free port: records each POST, fails `fail_next` of them (500)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0
        self.failed = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    receiver.failed += 1
                    self.send_response(500)
                else:
                    receiver.requests.append((dict(self.headers.items()), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `requests`."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()

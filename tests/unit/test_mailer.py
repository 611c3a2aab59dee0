"""Mailer tests against a real in-process SMTP server (aiosmtpd) and a temporary outbox."""

from __future__ import annotations

import html
import pathlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from clinicflow.notifications import mailer
from clinicflow.notifications.mailer import (
    EmailMessageSpec,
    MailDeliveryError,
    OutboxMailer,
    SmtpConfig,
    SmtpMailer,
)
from clinicflow.notifications.templates import (
    invitation_email,
    password_reset_email,
    verify_email_email,
)

SENDER = "ClinicFlow <no-reply@clinicflow.local>"
LINK = "https://app.clinicflow.test/account/action?token=abc123&next=%2Fhome"
REJECTED = "nobody@blocked.test"

# The AUTH tests deliberately run without TLS against the local test server.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@dataclass
class RecordingHandler:
    """aiosmtpd handler that keeps every envelope and refuses one known-bad recipient."""

    envelopes: list[Any] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address == REJECTED:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_server(handler: RecordingHandler, **smtp_options: Any) -> Iterator[int]:
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def _config(port: int, **overrides: Any) -> SmtpConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": None,
        "password": None,
        "tls": "none",
        "sender": SENDER,
        "timeout_seconds": 5.0,
    }
    values.update(overrides)
    return SmtpConfig(**values)


def _accept_only(login: bytes, password: bytes) -> Callable[..., AuthResult]:
    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == login
            and auth_data.password == password
        )
        return AuthResult(success=ok, handled=False)

    return authenticator


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
def smtp_port(handler: RecordingHandler) -> Iterator[int]:
    yield from _run_server(handler)


@pytest.fixture
def auth_smtp_port(handler: RecordingHandler) -> Iterator[int]:
    yield from _run_server(
        handler,
        auth_required=True,
        auth_require_tls=False,
        authenticator=_accept_only(b"clinic", b"s3cret-pass"),
    )


def _parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None, f"no text/{subtype} part"
    return str(body.get_content())


TEMPLATES: dict[str, Callable[[str], EmailMessageSpec]] = {
    "password_reset": lambda to: password_reset_email(
        to=to, full_name="Jane Doe", link=LINK, minutes_valid=30
    ),
    "verify_email": lambda to: verify_email_email(to=to, full_name="Jane Doe", link=LINK),
    "invitation": lambda to: invitation_email(
        to=to,
        tenant_name="Riverside Physio",
        role="practitioner",
        inviter_name="Dr. Ada Lovelace",
        link=LINK,
        expires_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    ),
}


@pytest.mark.parametrize("name", list(TEMPLATES))
async def test_templates_arrive_over_smtp(
    name: str, smtp_port: int, handler: RecordingHandler
) -> None:
    spec = TEMPLATES[name]("jane@example.test")

    await SmtpMailer(_config(smtp_port)).send(spec)

    [envelope] = handler.envelopes
    assert envelope.mail_from == "no-reply@clinicflow.local"
    assert envelope.rcpt_tos == ["jane@example.test"]
    received = _parse(envelope.original_content)
    assert received.get_content_type() == "multipart/alternative"
    assert received["To"] == "jane@example.test"
    assert received["Subject"] == spec.subject
    assert received["Message-ID"].endswith("@clinicflow.local>")
    text, body = _part(received, "plain"), _part(received, "html")
    assert LINK in text
    assert html.escape(LINK) in body
    assert "expires" in text
    assert "expires" in body


async def test_smtp_auth_with_credentials(auth_smtp_port: int, handler: RecordingHandler) -> None:
    config = _config(auth_smtp_port, username="clinic", password="s3cret-pass")

    await SmtpMailer(config).send(TEMPLATES["verify_email"]("jane@example.test"))

    assert len(handler.envelopes) == 1


async def test_smtp_wrong_password_is_a_delivery_error_without_the_password(
    auth_smtp_port: int, handler: RecordingHandler
) -> None:
    config = _config(auth_smtp_port, username="clinic", password="wrong-pass")

    with pytest.raises(MailDeliveryError) as caught:
        await SmtpMailer(config).send(TEMPLATES["verify_email"]("jane@example.test"))

    assert f"127.0.0.1:{auth_smtp_port}" in str(caught.value)
    assert "wrong-pass" not in str(caught.value)
    assert handler.envelopes == []


async def test_server_requiring_auth_refuses_anonymous_sender(
    auth_smtp_port: int, handler: RecordingHandler
) -> None:
    with pytest.raises(MailDeliveryError):
        await SmtpMailer(_config(auth_smtp_port)).send(TEMPLATES["verify_email"]("a@example.test"))
    assert handler.envelopes == []


async def test_rejected_recipient_is_a_delivery_error(smtp_port: int) -> None:
    with pytest.raises(MailDeliveryError, match="Mailbox unavailable"):
        await SmtpMailer(_config(smtp_port)).send(TEMPLATES["verify_email"](REJECTED))


async def test_unreachable_server_fails_fast_naming_host_and_port() -> None:
    port = _free_port()  # nothing listens here once the probe socket is closed
    config = _config(port, username="clinic", password="hunter2-secret", timeout_seconds=1.0)
    started = time.monotonic()

    with pytest.raises(MailDeliveryError) as caught:
        await SmtpMailer(config).send(TEMPLATES["verify_email"]("jane@example.test"))

    assert time.monotonic() - started < 3.0
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "hunter2-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("tls", "use_tls", "start_tls"),
    [("none", False, False), ("starttls", False, True), ("tls", True, False)],
)
async def test_tls_mode_maps_to_aiosmtplib_flags(
    monkeypatch: pytest.MonkeyPatch, tls: str, use_tls: bool, start_tls: bool
) -> None:
    calls: list[dict[str, Any]] = []

    async def fake_send(message: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    monkeypatch.setattr(aiosmtplib, "send", fake_send)
    await SmtpMailer(_config(2525, tls=tls)).send(TEMPLATES["verify_email"]("a@example.test"))

    [kwargs] = calls
    assert kwargs["use_tls"] is use_tls
    assert kwargs["start_tls"] is start_tls
    assert kwargs["username"] is None
    assert kwargs["password"] is None


def test_smtp_config_hides_password_and_rejects_half_credentials() -> None:
    assert "s3cret" not in repr(_config(25, username="u", password="s3cret"))
    with pytest.raises(ValueError, match="without a password"):
        _config(25, username="u")


async def test_outbox_writes_parseable_eml_and_reads_it_back(tmp_path: pathlib.Path) -> None:
    outbox_dir = tmp_path / "nested" / "outbox"
    outbox = OutboxMailer(outbox_dir)
    spec = TEMPLATES["password_reset"]("jane@example.test")

    await outbox.send(spec)

    [path] = list(outbox_dir.glob("*.eml"))
    assert re.fullmatch(r"\d{8}T\d{12}-[0-9a-f]{32}\.eml", path.name)
    stored = _parse(path.read_bytes())
    assert stored["Subject"] == spec.subject
    assert LINK in _part(stored, "plain")
    assert outbox.latest() == spec


async def test_outbox_latest_prefers_newest_and_filters_by_recipient(
    tmp_path: pathlib.Path,
) -> None:
    outbox = OutboxMailer(tmp_path)
    first = TEMPLATES["verify_email"]("Jane@Example.test")
    second = TEMPLATES["password_reset"]("bob@example.test")
    await outbox.send(first)
    await outbox.send(second)

    assert outbox.latest() == second
    assert outbox.latest(to="jane@example.test") == first
    assert outbox.latest(to="Bob <bob@example.test>") == second
    assert outbox.latest(to="carol@example.test") is None


def test_outbox_latest_on_missing_directory_is_none(tmp_path: pathlib.Path) -> None:
    assert OutboxMailer(tmp_path / "absent").latest() is None


@dataclass
class RecordingLogger:
    """Stands in for the module logger: the app's structlog config (level filter, cached
    loggers) depends on which tests ran first, so capturing through structlog is flaky."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def info(self, event: str, **fields: Any) -> None:
        self.entries.append({"event": event, **fields})


async def test_outbox_log_names_recipient_and_subject_but_not_body(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = RecordingLogger()
    monkeypatch.setattr(mailer, "_log", logger)
    spec = TEMPLATES["password_reset"]("jane@example.test")

    await OutboxMailer(tmp_path).send(spec)

    [entry] = logger.entries
    assert entry["to"] == "jane@example.test"
    assert entry["subject"] == spec.subject
    assert "abc123" not in repr(entry)


def test_html_parts_escape_user_controlled_values() -> None:
    spec = invitation_email(
        to="a@example.test",
        tenant_name="<script>alert(1)</script>",
        role='admin"><img src=x>',
        inviter_name="Eve & <b>Co</b>",
        link=LINK,
        expires_at=datetime(2026, 11, 24, 12, 0),
    )
    assert "<script>" not in spec.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in spec.html
    assert "<img" not in spec.html
    assert "Eve &amp; &lt;b&gt;Co&lt;/b&gt;" in spec.html
    assert "<script>alert(1)</script>" in spec.text  # plain text shows names verbatim
    assert "24 November 2026 at 12:00 UTC" in spec.text

    reset = password_reset_email(
        to="a@example.test", full_name="<i>Mallory</i>", link=LINK, minutes_valid=1
    )
    assert "&lt;i&gt;Mallory&lt;/i&gt;" in reset.html
    assert "1 minute." in reset.text


def test_subject_cannot_carry_header_injection() -> None:
    spec = invitation_email(
        to="a@example.test",
        tenant_name="Acme\r\nBcc: victim@example.test",
        role="admin",
        inviter_name="Eve",
        link=LINK,
        expires_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    )
    assert "\n" not in spec.subject
    assert "\r" not in spec.subject


def test_non_web_links_are_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        verify_email_email(to="a@example.test", full_name="A", link="javascript:alert(1)")

"""Outgoing e-mail: one small `Mailer` protocol, an SMTP implementation and a dev outbox.

Account flows (password reset, verification, invitations) only need "send this message"; keeping
that behind a protocol lets production talk SMTP while development and demos write `.eml` files
that can be opened, or read back with `OutboxMailer.latest()`, without running a mail server.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Literal, Protocol

import aiosmtplib
import structlog

DEFAULT_SENDER = "ClinicFlow <no-reply@clinicflow.local>"

_log = structlog.get_logger("clinicflow.mail")


@dataclass(frozen=True, slots=True)
class EmailMessageSpec:
    """What to send, independent of transport: one recipient, a text part and an HTML part."""

    to: str
    subject: str
    text: str
    html: str


class Mailer(Protocol):
    async def send(self, message: EmailMessageSpec) -> None: ...


class MailDeliveryError(Exception):
    """The SMTP server could not be reached or refused the message.

    The text names the server and the reason so operators can act on it; credentials never
    appear in it.
    """


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    # Kept out of repr so a logged or printed config cannot leak the secret.
    password: str | None = field(repr=False)
    tls: Literal["none", "starttls", "tls"]
    sender: str
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        """Fail at start-up rather than on the first password-reset request."""
        if self.tls not in ("none", "starttls", "tls"):
            raise ValueError(f"Unknown SMTP TLS mode {self.tls!r}.")
        if self.username is not None and self.password is None:
            raise ValueError("An SMTP username was given without a password.")


def to_mime(message: EmailMessageSpec, *, sender: str) -> EmailMessage:
    """Build the multipart/alternative message that both transports send or store.

    Message-ID takes its domain from the sender, because `make_msgid()` would otherwise look up
    the host's FQDN, which can stall on a badly configured resolver.
    """
    mime = EmailMessage()
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(datetime.now(UTC))
    mime["Message-ID"] = make_msgid(domain=_domain_of(sender))
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "clinicflow.local"


class SmtpMailer:
    """Delivers through an SMTP relay, connecting per message.

    Account e-mails are rare and bursty, so a fresh connection per message is simpler than a
    pool and never trips over a relay that has closed an idle connection.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, message: EmailMessageSpec) -> None:
        config = self._config
        mime = to_mime(message, sender=config.sender)
        try:
            await aiosmtplib.send(
                mime,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password if config.username is not None else None,
                use_tls=config.tls == "tls",
                # Explicit False: with None, aiosmtplib upgrades whenever the server offers it.
                start_tls=config.tls == "starttls",
                timeout=config.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise MailDeliveryError(
                f"SMTP delivery via {config.host}:{config.port} failed: {reason}"
            ) from exc
        _log.info("mail.sent", to=message.to, subject=message.subject)


class OutboxMailer:
    """Development fallback: each message becomes an `.eml` file in `directory`.

    File names start with a UTC timestamp so that name order is time order, which is all
    `latest()` needs. Only recipient and subject are logged, since bodies carry live tokens.
    """

    def __init__(self, directory: pathlib.Path, *, sender: str = DEFAULT_SENDER) -> None:
        self._directory = directory
        self._sender = sender

    async def send(self, message: EmailMessageSpec) -> None:
        data = to_mime(message, sender=self._sender).as_bytes()
        path = await asyncio.to_thread(self._write, data)
        _log.info("mail.outbox", to=message.to, subject=message.subject, file=path.name)

    def _write(self, data: bytes) -> pathlib.Path:
        """Write under a temporary name first so `latest()` never reads a half-written file."""
        self._directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self._directory / f"{stamp}-{uuid.uuid4().hex}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        os.replace(partial, path)
        return path

    def latest(self, to: str | None = None) -> EmailMessageSpec | None:
        """The newest stored message, optionally the newest one addressed to `to`."""
        if not self._directory.is_dir():
            return None
        wanted = _address_key(to) if to is not None else None
        for path in sorted(self._directory.glob("*.eml"), reverse=True):
            spec = _read_eml(path)
            if wanted is None or _address_key(spec.to) == wanted:
                return spec
        return None


def _address_key(address: str) -> str:
    """Compare recipients by bare address, ignoring display names and case."""
    return parseaddr(address)[1].lower()


def _read_eml(path: pathlib.Path) -> EmailMessageSpec:
    with path.open("rb") as handle:
        mime = BytesParser(policy=policy.default).parse(handle)
    if not isinstance(mime, EmailMessage):  # always true with policy.default; narrows the type
        raise TypeError(f"{path} did not parse as an EmailMessage")
    return EmailMessageSpec(
        to=str(mime.get("To", "")),
        subject=str(mime.get("Subject", "")),
        text=_body_text(mime, "plain"),
        html=_body_text(mime, "html"),
    )


def _body_text(mime: EmailMessage, subtype: str) -> str:
    part = mime.get_body(preferencelist=(subtype,))
    return "" if part is None else str(part.get_content())

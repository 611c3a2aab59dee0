"""Signing and sending one webhook delivery (SPEC §6), and the SSRF guard on its URL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import httpx

SIGNATURE_HEADER = "X-ClinicFlow-Signature"
EVENT_ID_HEADER = "X-ClinicFlow-Event-ID"
TIMEOUT_SECONDS = 10.0


class UnsafeWebhookURL(ValueError):
    """The URL is not http(s), or resolves to an address the server must not call."""


class WebhookDeliveryError(Exception):
    """The receiver could not be reached or did not answer 2xx."""


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


async def require_safe_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL resolving to a private, loopback, link-local or otherwise internal address
    (production), so a webhook cannot be aimed at the server's own network. Checked at save and
    again before each delivery, since DNS can change in between."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeWebhookURL("The URL must be an absolute http(s) URL.")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )  # fmt: skip
    except (OSError, UnicodeError, ValueError) as error:  # unresolvable, a label over 63
        # characters (the IDNA codec's UnicodeError), a port that is not a number
        raise UnsafeWebhookURL(f"The host {parts.hostname!r} does not resolve.") from error
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise UnsafeWebhookURL(
                f"The host {parts.hostname!r} resolves to a private or internal address."
            )


async def post_event(
    url: str, secret: str, body: str, event_id: str, *, allow_private: bool
) -> None:
    await require_safe_url(url, allow_private=allow_private)
    raw = body.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, raw, int(time.time())),
        EVENT_ID_HEADER: event_id,
        "User-Agent": "ClinicFlow-Webhooks/1",
    }
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            response = await client.post(url, content=raw, headers=headers)
    except httpx.HTTPError as error:
        raise WebhookDeliveryError(f"{type(error).__name__}: {error}") from error
    if not response.is_success:
        raise WebhookDeliveryError(f"the receiver answered HTTP {response.status_code}")

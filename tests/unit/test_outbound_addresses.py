"""Which addresses webhooks and n8n may be called at in production, and how long a call may
spend finding and reaching one (webhooks/delivery.py)."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

from clinicflow.webhooks.delivery import (
    UnsafeWebhookURL,
    WebhookDeliveryError,
    outbound_client,
    post_event,
    public_addresses,
    require_safe_url,
)


def resolve_to(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str], delay: float = 0) -> None:
    """`socket.getaddrinfo` answering each name in `answers` with its address (after `delay`
    seconds); other names as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in answers:
            time.sleep(delay)
            return real(answers[name], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.5", "169.254.169.254", "100.100.100.200", "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "192.0.0.192",  # a cloud's metadata address, in the IETF protocol block
        "::1", "fd00:ec2::254", "fe80::1", "fec0::1",  # site-local
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:0:a00:5",  # IPv4-translated
        "64:ff9b::a00:5",  # NAT64: a gateway forwards it to 10.0.0.5
        "64:ff9b:1::1",  # NAT64, local use
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    ],
)  # fmt: skip
async def test_an_address_that_is_not_public_is_refused(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    resolve_to(monkeypatch, {"evil.test": address})
    with pytest.raises(UnsafeWebhookURL, match="private or internal"):
        await public_addresses("evil.test", 443)


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "64:ff9b::5db8:d70e"],
)
async def test_a_public_address_is_accepted(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    resolve_to(monkeypatch, {"hooks.example": address})
    assert await public_addresses("hooks.example", 443) == [address]


async def test_the_connect_timeout_bounds_the_lookup_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name server that takes its time cannot hold a delivery past the client's timeout
    (past the outbox lease, another worker would deliver it again)."""
    resolve_to(monkeypatch, {"slow.test": "127.0.0.1"}, delay=1.0)
    async with outbound_client(allow_private=False, timeout=0.1) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get("http://slow.test/")


async def test_a_url_the_client_cannot_parse_is_refused_at_save_and_fails_at_delivery() -> None:
    """A leading zero: the resolver reads 93.184.215.014 as octal (a public address); httpx
    refuses it. Saved before this check, its delivery is a failed attempt, not a crash."""
    with pytest.raises(UnsafeWebhookURL, match="not valid"):
        await require_safe_url("http://93.184.215.014/hook", allow_private=False)
    with pytest.raises(UnsafeWebhookURL, match="not valid"):
        await require_safe_url("http://hooks.example:70000/hook", allow_private=True)
    with pytest.raises(WebhookDeliveryError, match="InvalidURL"):
        await post_event("http://93.184.215.014/hook", "secret", "{}", "e-1", allow_private=False)

"""Signing and sending one webhook delivery (SPEC §6), and the SSRF guard on its URL."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from httpcore import SOCKET_OPTION as SocketOption

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
    """Refuse a URL that is not absolute http(s), that the HTTP client cannot parse, or (in
    production) whose host resolves to an address that is not public, so a webhook cannot be
    aimed at the server's own network: checked when it is saved. Each call goes through
    `outbound_client`, which checks the address it connects to again."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeWebhookURL("The URL must be an absolute http(s) URL.")
    try:
        httpx.URL(url)  # refuses what urlsplit lets through, an IPv4 octet with a leading zero
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except (httpx.InvalidURL, ValueError) as error:  # ValueError: a port past 65535
        raise UnsafeWebhookURL(f"The URL is not valid: {error}.") from error
    if not allow_private:
        await public_addresses(parts.hostname, port)


# Not public whatever `is_global` says (its answers differ between Python releases): NAT64's
# local-use prefix, IPv6 site-local, the IETF protocol block (192.0.0.192 is a cloud's
# metadata address) and the 6to4 relay anycast.
_NEVER_PUBLIC = tuple(
    ipaddress.ip_network(network)
    for network in ("64:ff9b:1::/48", "fec0::/10", "192.0.0.0/24", "192.88.99.0/24")
)
# IPv6 addresses whose last 32 bits are an IPv4 address the packet reaches: IPv4-compatible,
# IPv4-translated and NAT64's well-known prefix (mapped and 6to4 have their own attributes).
_CARRYING_IPV4 = tuple(
    ipaddress.IPv6Network(network) for network in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IPAddress) -> bool:
    """An address on the public internet: an IPv6 address standing for an IPv4 one is judged
    by that IPv4 address (64:ff9b::a00:5 reaches 10.0.0.5 through a NAT64 gateway)."""
    if isinstance(address, ipaddress.IPv6Address) and (carried := _carried_ipv4(address)):
        return is_public(carried)
    if any(address in network for network in _NEVER_PUBLIC):
        return False
    return address.is_global and not address.is_multicast


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _CARRYING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def public_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order; refused unless all of them
    are public."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as error:  # unresolvable, or a label over 63
        # characters (the IDNA codec's UnicodeError)
        raise UnsafeWebhookURL(f"The host {host!r} does not resolve.") from error
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not is_public(address):
            raise UnsafeWebhookURL(f"The host {host!r} resolves to a private or internal address.")
        addresses.append(str(address))
    if not addresses:
        raise UnsafeWebhookURL(f"The host {host!r} does not resolve.")
    return addresses


class _PublicAddressesOnly(httpcore.AsyncNetworkBackend):
    """Connects to an address only once it is vetted, and to no other: the resolution checked is
    the one the socket uses. Checking a host and then letting the client resolve it again to
    connect leaves a gap: a resolver answering a public address to the check and the server's
    own network to the connect (DNS rebinding) would get the call through. TLS still verifies
    the certificate against the host name (httpcore starts TLS with the request's host)."""

    def __init__(self) -> None:
        self._network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connect = functools.partial(
            self._network.connect_tcp, port=port, timeout=timeout,
            local_address=local_address, socket_options=socket_options,
        )  # fmt: skip
        try:
            # The client's connect timeout bounds the lookup and every address tried.
            async with asyncio.timeout(timeout):
                addresses = await public_addresses(host, port)
                for address in addresses[:-1]:  # the next one when an address does not answer
                    with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                        return await connect(address)
                return await connect(addresses[-1])
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"no answer from {host} within {timeout} s") from error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeWebhookURL("Outgoing calls go to network addresses only.")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS settings, built once (loading the CA bundle takes milliseconds)."""
    return httpx.create_ssl_context()


class _PublicOnlyTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__(verify=_tls())
        # httpx takes no network backend; its pool is replaced by one on ours, with the same
        # TLS context. Proxies from the environment are not used: a proxy would resolve the
        # host itself, past the check.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_tls(), network_backend=_PublicAddressesOnly()
        )


def outbound_client(*, allow_private: bool, timeout: float, **options: Any) -> httpx.AsyncClient:
    """The HTTP client for the addresses a practice gives (webhooks, n8n). Unless
    `allow_private` (development and tests), it connects only to public addresses, each
    checked as it is connected to; a refusal raises `UnsafeWebhookURL`."""
    if allow_private:
        return httpx.AsyncClient(timeout=timeout, **options)
    return httpx.AsyncClient(transport=_PublicOnlyTransport(), timeout=timeout, **options)


async def post_event(
    url: str, secret: str, body: str, event_id: str, *, allow_private: bool
) -> None:
    raw = body.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, raw, int(time.time())),
        EVENT_ID_HEADER: event_id,
        "User-Agent": "ClinicFlow-Webhooks/1",
    }
    try:
        async with outbound_client(
            allow_private=allow_private, timeout=TIMEOUT_SECONDS, follow_redirects=False
        ) as client:
            response = await client.post(url, content=raw, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # InvalidURL: saved before it was
        # checked at save (see require_safe_url); not an HTTPError
        raise WebhookDeliveryError(f"{type(error).__name__}: {error}") from error
    if not response.is_success:
        raise WebhookDeliveryError(f"the receiver answered HTTP {response.status_code}")

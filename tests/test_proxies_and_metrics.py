"""TRUSTED_PROXIES decides whose X-Forwarded-For is believed; METRICS_TOKEN guards /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from tests import documented_statuses
from tests.conftest import make_production_settings, make_test_settings

PROXY = "10.0.0.5"
ATTACKER = "198.51.100.7"
LOGIN = {"username": "nobody@example.com", "password": "wrong-password"}


@asynccontextmanager
async def client_from(
    settings: Settings, peer: str, **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=documented_statuses.recording(app), client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def _login_statuses(client: httpx.AsyncClient, forwarded_for: list[str]) -> list[int]:
    statuses = []
    for address in forwarded_for:
        response = await client.post(
            "/api/v1/auth/login", json=LOGIN, headers={"X-Forwarded-For": address}
        )
        statuses.append(response.status_code)
    return statuses


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    db: FastAPI, settings: Settings
) -> None:
    """Three different forged addresses from one real peer share that peer's login budget."""
    async with client_from(
        settings, ATTACKER, rate_limit_enabled=True, rate_limit_login_ip="2/minute",
        trusted_proxies=[PROXY],
    ) as client:  # fmt: skip
        statuses = await _login_statuses(client, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
    assert statuses == [401, 401, 429]


async def test_a_trusted_proxy_forwards_the_real_client_address(
    db: FastAPI, settings: Settings
) -> None:
    """Behind the proxy, each forwarded client has its own budget; one of them runs out."""
    async with client_from(
        settings, PROXY, rate_limit_enabled=True, rate_limit_login_ip="2/minute",
        trusted_proxies=["10.0.0.0/24"],
    ) as client:  # fmt: skip
        statuses = await _login_statuses(
            client, ["203.0.113.1", "203.0.113.2", "203.0.113.1", "203.0.113.1"]
        )
    assert statuses == [401, 401, 401, 429]


async def test_without_trusted_proxies_the_peer_address_is_used(
    db: FastAPI, settings: Settings
) -> None:
    async with client_from(
        settings, PROXY, rate_limit_enabled=True, rate_limit_login_ip="2/minute"
    ) as client:
        statuses = await _login_statuses(client, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
    assert statuses == [401, 401, 429]


def test_trusted_proxies_reads_a_comma_list_and_refuses_garbage() -> None:
    settings = Settings(_env_file=None, trusted_proxies="10.0.0.1, 172.16.0.0/12")  # type: ignore[call-arg]
    assert settings.trusted_proxies == ["10.0.0.1", "172.16.0.0/12"]
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
        Settings(_env_file=None, trusted_proxies="proxy.example.com")  # type: ignore[call-arg]


@asynccontextmanager
async def bare_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """/metrics touches no database, so no lifespan is needed."""
    transport = httpx.ASGITransport(app=documented_statuses.recording(create_app(settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_metrics_are_closed_in_production_without_a_token() -> None:
    async with bare_client(make_production_settings()) as client:
        response = await client.get("/metrics")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "METRICS_TOKEN" in response.json()["detail"]


async def test_metrics_need_the_configured_bearer_token() -> None:
    production = make_production_settings(metrics_token="scrape-me-" + "x" * 20)
    async with bare_client(production) as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-me-" + "x" * 20}
        )
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert right.status_code == 200
    assert "clinicflow_http_requests_total" in right.text


async def test_metrics_stay_open_in_development_without_a_token() -> None:
    async with bare_client(make_test_settings(environment="development")) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200

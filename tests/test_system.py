"""Root, health, readiness, request ids, security headers, problem responses."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from clinicflow.core import migrate
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from tests import documented_statuses
from tests.conftest import make_test_settings

PROBLEM = "application/problem+json"


async def test_root_names_the_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.json()["name"] == "ClinicFlow"
    assert response.json()["docs"] == "/docs"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_health_answers_get_and_head(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/health")
    assert response.status_code == 200


async def test_ready_reports_database_version_environment_time(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["environment"] == "test"
    assert body["version"]
    assert body["time"].endswith("+00:00")


async def test_ready_is_503_until_the_database_is_migrated_for_this_code(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process deployed before `clinicflow db upgrade` ran takes no traffic; one whose
    database a rolling deploy already migrated further does."""
    head, known = migrate.code_revisions()
    monkeypatch.setattr(migrate, "code_revisions", lambda: ("9999", known | {"9999"}))
    behind = await client.get("/health/ready")
    assert behind.status_code == 503
    assert behind.json()["checks"]["database"] == (
        f"error: schema at {head}, this code needs 9999; run `clinicflow db upgrade`"
    )
    monkeypatch.setattr(migrate, "code_revisions", lambda: ("0001", frozenset({"0001"})))
    assert (await client.get("/health/ready")).status_code == 200


async def test_ready_is_503_when_the_database_is_down() -> None:
    app = create_app(make_test_settings(database_url="postgresql://nobody@127.0.0.1:1/none"))
    app.state.database = __import__("clinicflow.core.database", fromlist=["x"]).create_database(
        app.state.settings
    )
    transport = httpx.ASGITransport(app=documented_statuses.recording(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/health/ready")
    await app.state.database.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"].startswith("error")


async def test_ready_stays_200_degraded_while_redis_is_down(
    db: FastAPI, settings: Settings
) -> None:
    """The API serves without Redis (limits count per process meanwhile): readiness says so
    instead of taking every instance out of the load balancer at once."""
    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=documented_statuses.recording(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")


async def test_docs_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200
    spec = (await client.get("/api/v1/openapi.json")).json()
    assert spec["info"]["title"] == "ClinicFlow"


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] not in ("", "bad id\twith spaces")
    assert len(generated.headers["x-request-id"]) == 32


async def test_security_headers_are_set(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_only_the_docs_pages_may_load_anything(client: httpx.AsyncClient) -> None:
    """With CSP relaxed (the default) the API's answers keep the strict policy; only Swagger UI
    and ReDoc may load their scripts and styles from their CDN."""
    strict = "default-src 'none'; frame-ancestors 'none'"
    for path in ("/", "/health", "/api/v1/openapi.json", "/api/v1/nothing-here"):
        response = await client.get(path)
        assert response.headers["content-security-policy"] == strict, path
    for path in ("/docs", "/redoc"):
        policy = (await client.get(path)).headers["content-security-policy"]
        assert "cdn.jsdelivr.net" in policy, path
        assert "frame-ancestors 'none'" in policy


async def test_unknown_route_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not found"
    assert "/api/v1/nothing-here" in body["detail"]


async def test_wrong_method_is_a_problem_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM


async def test_oversized_body_is_a_problem_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/health", content=b"x" * 2_000_000)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 413


async def test_malformed_json_is_a_problem_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b'{"username": "a", "password": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "The request body is not valid JSON."


async def test_wrong_type_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/login", json={"username": "a", "password": 12})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == ["password"]
    assert "12" not in str(errors)  # the submitted value is not echoed back


async def test_prometheus_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/health")
    await client.get("/api/v1/users/0b3f0000-0000-7000-8000-000000000001")
    body = (await client.get("/metrics")).text
    assert 'clinicflow_http_requests_total{method="GET",route="/health",status="200"}' in body
    assert 'route="/users/{user_id}",status="401"' in body
    assert "0b3f0000" not in body  # ids never become labels
    assert "clinicflow_http_request_duration_seconds_bucket" in body


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/patients", "GET, POST"),
        ("DELETE", "/api/v1/patients", "GET, POST"),
        ("PUT", "/api/v1/patients/0190f0f0-0000-7000-8000-000000000001", "GET, PATCH, DELETE"),
        ("POST", "/health", "GET, HEAD"),
        ("GET", "/api/v1/auth/login", "POST"),
    ],
)
async def test_a_method_the_path_does_not_accept_gets_405_with_every_accepted_method(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == PROBLEM
    assert allow in response.json()["detail"]


async def test_the_openapi_document_is_found_at_the_root_too(client: httpx.AsyncClient) -> None:
    redirect = await client.get("/openapi.json")
    assert redirect.status_code == 308
    assert redirect.headers["location"] == "/api/v1/openapi.json"
    followed = await client.get("/openapi.json", follow_redirects=True)
    assert followed.json()["info"]["title"] == "ClinicFlow"


async def test_malformed_json_reports_a_position_not_a_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b'{"username": "a", "password": }',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["field"], error["type"], error["position"]) == ("body", "json_invalid", 30)

"""compose.yaml, the Dockerfile and .env.example describe a production that works: checked by
reading them, since CI has no Docker engine to run them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_SECRETS = (
    "POSTGRES_SUPERUSER_PASSWORD",
    "OWNER_DB_PASSWORD",
    "APP_DB_PASSWORD",
    "SECRET_KEY",
    "ENCRYPTION_KEYS",
    "AUDIT_HMAC_KEY",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def test_every_part_of_production_is_a_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(services)
    assert services["migrate"]["command"] == ["clinicflow", "db", "upgrade"]
    assert services["worker"]["command"] == ["clinicflow", "worker"]
    api = services["api"]["command"]
    assert api[:2] == ["clinicflow", "serve"]
    assert int(api[api.index("--workers") + 1]) >= 2


def test_the_api_waits_for_migrations_and_everything_is_health_checked(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("postgres", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name


def test_migrations_run_as_a_non_superuser_owner_and_the_api_as_the_app_role(
    compose: dict[str, Any],
) -> None:
    environment = _environment(compose["services"]["api"])
    assert environment["MIGRATIONS_DATABASE_URL"].startswith("postgresql://clinicflow_owner:")
    assert environment["DATABASE_URL"].startswith("postgresql://clinicflow_app:")
    assert environment["APP_DB_ROLE"] == "clinicflow_app"
    init = (ROOT / "docker" / "postgres-init.sh").read_text()
    assert re.search(r"CREATE ROLE clinicflow_owner LOGIN NOSUPERUSER NOBYPASSRLS", init)
    assert "CREATE DATABASE clinicflow OWNER clinicflow_owner" in init
    mounts = compose["services"]["postgres"]["volumes"]
    assert any(
        mount.startswith("./docker/postgres-init.sh:/docker-entrypoint-initdb.d/")
        for mount in mounts
    )


def test_a_missing_secret_stops_compose_with_a_line_naming_it(compose: dict[str, Any]) -> None:
    text = (ROOT / "compose.yaml").read_text()
    for secret in REQUIRED_SECRETS:
        assert re.search(rf"\$\{{{secret}:\?set {secret} in \.env", text), secret
    assert ":-}" not in text.split("SECRET_KEY")[1].split("\n")[0]  # never an empty default
    example = (ROOT / ".env.example").read_text()
    for secret in REQUIRED_SECRETS:
        assert re.search(rf"^{secret}=$", example, re.MULTILINE), secret


def test_the_image_runs_unprivileged_from_the_lock_file_with_a_writable_data_volume(
    compose: dict[str, Any],
) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements/runtime.lock" in dockerfile
    assert "chown clinicflow:clinicflow /app/var" in dockerfile
    assert re.search(r"^USER clinicflow$", dockerfile, re.MULTILINE)
    for name in ("api", "worker"):
        assert "appdata:/app/var" in compose["services"][name]["volumes"]
    assert "appdata" in compose["volumes"]
    assert (ROOT / "requirements" / "runtime.lock").is_file()

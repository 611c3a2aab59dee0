"""Operator mistakes are one line on stderr and a non-zero exit, run as an operator runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import PgTestDatabase
from tests.served import CLINICFLOW, serve

STRONG_SECRET = "LzJpG-O1c7QdR-G3KO1uPS35zPo0AcBV5RhEwdvew-QAT-h_"
GOOD_KEYS = "k1:gQnVfnalDb2vfkT2vaZLp-xZD-3h_icGlSbP_TZ0-Us"
STRONG_AUDIT = "6Qz1jOj41C0Y8wlQWHsm4TRlgZALydmlratWOzBv"


def run(tmp_path: Path, *args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "SECRET_", "ENCRYPTION_", "ENVIRONMENT", "AUDIT_"))
    }
    return subprocess.run(  # noqa: S603  (our own CLI)
        [CLINICFLOW, *args],
        cwd=tmp_path,  # no .env is read
        env={**inherited, "DATABASE_URL": f"sqlite:///{tmp_path / 'cf.db'}", **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("clinicflow: ")
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"ENVIRONMENT": "production"}, "SECRET_KEY must be set"),
        (
            {
                "ENVIRONMENT": "production",
                "SECRET_KEY": STRONG_SECRET,
                "AUDIT_HMAC_KEY": STRONG_AUDIT,
            },
            "ENCRYPTION_KEYS must be set",
        ),
        ({"ENCRYPTION_KEYS": "not-a-key"}, "ENCRYPTION_KEYS: entry 1"),
        ({"RATE_LIMIT_LOGIN_IP": "lots"}, "RATE_LIMIT_LOGIN_IP"),
        ({"REDIS_URL": "notaurl"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:notaport/0"}, "REDIS_URL"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL: must be a PostgreSQL URL"),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(
    tmp_path: Path, environment: dict[str, str], expected: str
) -> None:
    assert_one_clear_line(run(tmp_path, "serve", **environment), expected)


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "db", "upgrade", DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    assert_one_clear_line(result, "cannot reach the database")


def test_a_file_that_cannot_be_written_is_named_as_such(tmp_path: Path) -> None:
    """Not 'cannot reach the database': the OS's own words, naming the path."""
    result = run(tmp_path, "openapi", "--output", str(tmp_path / "missing" / "x.json"))
    assert_one_clear_line(result, "No such file or directory")
    assert "database" not in result.stderr


def test_serve_refuses_a_port_that_does_not_exist(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", "--port", "99999")
    assert result.returncode == 2
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_downgrade_takes_a_relative_revision(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    assert "(head)" in run(tmp_path, "db", "current").stdout
    downgraded = run(tmp_path, "db", "downgrade", "-1")
    assert downgraded.returncode == 0, downgraded.stderr
    current = run(tmp_path, "db", "current").stdout
    assert "Rev: " in current
    assert "(head)" not in current  # one step below head now


def test_seed_refuses_production_unless_forced(tmp_path: Path) -> None:
    production = {
        "ENVIRONMENT": "production", "SECRET_KEY": STRONG_SECRET, "ENCRYPTION_KEYS": GOOD_KEYS,
        "AUDIT_HMAC_KEY": STRONG_AUDIT,
    }  # fmt: skip
    assert run(tmp_path, "db", "upgrade", **production).returncode == 0
    refused = run(tmp_path, "seed", **production)
    assert_one_clear_line(refused, "refusing to seed a production database")
    forced = run(tmp_path, "seed", "--force", **production)
    assert forced.returncode == 0, forced.stderr


def test_audit_verify_refuses_a_heads_file_that_does_not_exist(tmp_path: Path) -> None:
    """Checking against no heads at all would pass a chain whose tail was deleted."""
    assert run(tmp_path, "db", "upgrade").returncode == 0
    missing = tmp_path / "elsewhere" / "audit-heads.jsonl"
    result = run(tmp_path, "audit", "verify", "--heads-file", str(missing))
    assert_one_clear_line(result, f"--heads-file {missing}: no such file")
    assert "intact" not in result.stdout
    directory = run(tmp_path, "audit", "verify", "--heads-file", str(tmp_path))
    assert_one_clear_line(directory, "not a file")


def test_audit_verify_says_where_it_looked_for_the_default_heads_file(tmp_path: Path) -> None:
    """AUDIT_HEAD_FILE is relative to the working directory: run from elsewhere, verify finds
    no heads there and says so, naming the absolute path, instead of passing quietly."""
    assert run(tmp_path, "db", "upgrade").returncode == 0
    result = run(tmp_path, "audit", "verify")
    assert result.returncode == 0, result.stderr
    looked = str(tmp_path / "var" / "audit-heads.jsonl")
    assert f"no exported heads found at {looked}" in result.stdout
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1, result.stderr
    assert warning[0].startswith("clinicflow: warning: no exported heads found at ")
    assert looked in warning[0]
    assert "--heads-file" in warning[0]
    log_only = run(tmp_path, "audit", "verify", AUDIT_HEAD_FILE="")
    assert log_only.returncode == 0, log_only.stderr
    assert "AUDIT_HEAD_FILE is empty" in log_only.stdout
    assert log_only.stderr == ""


def test_seed_on_a_fresh_embedded_database_migrates_it_first(tmp_path: Path) -> None:
    seeded = run(tmp_path, "seed")
    assert seeded.returncode == 0, seeded.stderr
    assert "ana@aurora.example" in seeded.stdout


def test_serve_with_nothing_set_migrates_its_embedded_database(tmp_path: Path) -> None:
    """SPEC §5: `clinicflow serve` with none of the settings runs on the embedded default."""
    with serve(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path, workers=1) as served:
        ready = httpx.get(f"{served.base_url}/health/ready", timeout=5)
        listed = httpx.get(f"{served.base_url}/api/v1/patients", timeout=5)
    assert ready.status_code == 200, ready.text
    assert listed.status_code == 401  # the tables are there; the caller is not signed in


def test_production_refuses_to_serve_as_a_role_rls_does_not_bind(
    tmp_path: Path, pg_database: PgTestDatabase
) -> None:
    production = {
        "ENVIRONMENT": "production", "SECRET_KEY": STRONG_SECRET, "ENCRYPTION_KEYS": GOOD_KEYS,
        "AUDIT_HMAC_KEY": STRONG_AUDIT,
    }  # fmt: skip
    for url, why in ((pg_database.admin_url, "is a superuser"), (pg_database.owner_url, "owns")):
        result = run(tmp_path, "serve", DATABASE_URL=url, **production)
        assert_one_clear_line(result, why)
        assert "row-level security would not apply" in result.stderr

"""Settings refuse unsafe production values and normalise database URLs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from clinicflow.core.settings import DEFAULT_SECRET_KEY, Settings

STRONG = "LzJpG-O1c7QdR-G3KO1uPS35zPo0AcBV5RhEwdvew-QAT-h_"
KEYS = "k1:gQnVfnalDb2vfkT2vaZLp-xZD-3h_icGlSbP_TZ0-Us"
AUDIT = "6Qz1jOj41C0Y8wlQWHsm4TRlgZALydmlratWOzBv"


@pytest.mark.parametrize("key", [None, "short-audit-key"])
def test_production_refuses_a_default_or_short_audit_key(key: str | None) -> None:
    values = {"audit_hmac_key": key} if key else {}
    with pytest.raises(ValidationError, match="AUDIT_HMAC_KEY"):
        make(environment="production", secret_key=STRONG, encryption_keys=KEYS, **values)


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_development_runs_on_the_embedded_default() -> None:
    settings = make()
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert not settings.is_postgres


@pytest.mark.parametrize("secret", [DEFAULT_SECRET_KEY, "short-secret"])
def test_production_refuses_default_or_short_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make(
            environment="production", secret_key=secret, encryption_keys=KEYS, audit_hmac_key=AUDIT
        )


def test_production_refuses_default_encryption_keys() -> None:
    with pytest.raises(ValidationError, match="ENCRYPTION_KEYS"):
        make(environment="production", secret_key=STRONG, audit_hmac_key=AUDIT)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"secret_key": "x" * 48}, "SECRET_KEY"),  # long, but one character over and over
        ({"audit_hmac_key": "ab" * 24}, "AUDIT_HMAC_KEY"),
        ({"audit_hmac_key": STRONG}, "AUDIT_HMAC_KEY must differ from SECRET_KEY"),
        # The published development key under another id, and 32 zero bytes.
        ({"encryption_keys": "prod:ZGV2LWluc2VjdXJlLWtleS0zMi1ieXRlcy1sb25nISE"}, "prod"),
        ({"encryption_keys": f"{KEYS},zero:" + "A" * 43}, "zero"),
    ],
)
def test_production_refuses_secrets_that_are_not_random(values: dict[str, str], named: str) -> None:
    settings = {"secret_key": STRONG, "encryption_keys": KEYS, "audit_hmac_key": AUDIT, **values}
    with pytest.raises(ValidationError, match=named):
        make(environment="production", **settings)


def test_production_accepts_real_secrets() -> None:
    settings = make(
        environment="production", secret_key=STRONG, encryption_keys=KEYS, audit_hmac_key=AUDIT
    )
    assert settings.environment == "production"


@pytest.mark.parametrize(
    ("memory_kib", "time_cost"), [(19456, 1), (4096, 5), (1024, 1), (1024, 35)]
)
def test_production_refuses_a_password_hash_cheaper_than_owasps_minimum(
    memory_kib: int, time_cost: int
) -> None:
    with pytest.raises(ValidationError, match="PASSWORD_HASH_MEMORY_KIB"):
        make(
            environment="production", secret_key=STRONG, encryption_keys=KEYS,
            audit_hmac_key=AUDIT, password_hash_memory_kib=memory_kib,
            password_hash_time_cost=time_cost,
        )  # fmt: skip


def test_the_default_password_hash_is_owasps_recommended_argon2id() -> None:
    settings = make(
        environment="production", secret_key=STRONG, encryption_keys=KEYS, audit_hmac_key=AUDIT
    )
    cost = (
        settings.password_hash_memory_kib,
        settings.password_hash_time_cost,
        settings.password_hash_parallelism,
    )
    assert cost == (19456, 2, 1)
    cheapest_equivalent = make(
        environment="production", secret_key=STRONG, encryption_keys=KEYS,
        audit_hmac_key=AUDIT, password_hash_memory_kib=7168, password_hash_time_cost=5,
    )  # fmt: skip
    assert cheapest_equivalent.password_hash_time_cost == 5


def test_postgres_urls_get_the_async_driver() -> None:
    settings = make(database_url="postgresql://u:p@db/clinicflow")
    assert settings.database_url == "postgresql+asyncpg://u:p@db/clinicflow"
    assert settings.migrations_url == settings.database_url


def test_cors_origins_from_a_comma_separated_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert make().cors_origins == ["https://a.example", "https://b.example"]


PG = "postgresql+asyncpg://app@db/clinicflow"
REDIS = "redis://cache:6379/0"
PRODUCTION = {"secret_key": STRONG, "encryption_keys": KEYS, "audit_hmac_key": AUDIT}


@pytest.mark.parametrize(("cores", "workers"), [(1, 2), (2, 2), (3, 3), (16, 4)])
def test_production_serves_with_a_process_per_core(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    """One Python process uses one core: production on PostgreSQL with Redis starts one per
    core it may run on, two to four (four pools fit PostgreSQL's default connection limit)."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)))
    settings = make(environment="production", database_url=PG, redis_url=REDIS, **PRODUCTION)
    assert settings.api_workers == workers


def test_one_process_unless_production_shares_its_rate_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without Redis each process would keep its own rate-limit counters (N times the limit);
    the embedded database delivers its messages from its one server process."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    assert make(environment="production", database_url=PG, **PRODUCTION).api_workers == 1
    assert make(environment="production", redis_url=REDIS, **PRODUCTION).api_workers == 1
    assert make(database_url=PG, redis_url=REDIS).api_workers == 1


def test_web_concurrency_decides_on_postgresql_and_empty_means_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "6")
    assert make(database_url=PG).api_workers == 6
    assert make().api_workers == 1  # SQLite
    monkeypatch.setenv("WEB_CONCURRENCY", "")
    assert make(database_url=PG).api_workers == 1
    monkeypatch.setenv("WEB_CONCURRENCY", "0")
    with pytest.raises(ValidationError, match="web_concurrency"):
        make(database_url=PG)


def test_the_first_admin_address_must_be_an_address() -> None:
    """The admin FIRST_ADMIN_EMAIL creates at start-up passes the check POST /users makes;
    left empty (compose passes `FIRST_ADMIN_EMAIL=` when unset) it is simply not set."""
    with pytest.raises(ValidationError, match="first_admin_email"):
        make(first_admin_email="bademail")
    assert make(first_admin_email="").first_admin_email is None

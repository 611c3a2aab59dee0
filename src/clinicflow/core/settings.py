"""Operator settings, read from the environment and `.env` (SPEC §5 names)."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import EmailStr, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from clinicflow.core.crypto import EncryptionConfigError, unsafe_key_ids

# Recognisable placeholders: refused in production, tolerated in development (`make run`).
DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me-in-production"  # noqa: S105
DEFAULT_ENCRYPTION_KEYS = "dev:ZGV2LWluc2VjdXJlLWtleS0zMi1ieXRlcy1sb25nISE"
# OWASP's equivalent argon2id settings trade memory for passes, from 46 MiB x 1 to 7 MiB x 5;
# production refuses less memory, or less work, than the cheapest of them (more passes over
# less memory would give up the memory-hardness that makes argon2 costly on GPUs).
MIN_PASSWORD_HASH_MEMORY_KIB = 7168
MIN_PASSWORD_HASH_WORK = MIN_PASSWORD_HASH_MEMORY_KIB * 5
DEFAULT_AUDIT_HMAC_KEY = "dev-insecure-audit-key-change-me-in-production"
MIN_SECRET_LENGTH = 32
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/clinicflow.db"


class SettingsError(ValueError):
    """A setting that makes the service unsafe or unable to start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    environment: Literal["development", "production", "test"] = "development"
    log_level: str = "INFO"
    log_json: bool = True

    database_url: str = DEFAULT_DATABASE_URL
    migrations_database_url: str | None = None
    app_db_role: str | None = None
    app_db_password: SecretStr | None = None
    # API worker processes when `clinicflow serve` is given no --workers (the usual name, which
    # hosting platforms set; empty means unset).
    web_concurrency: int | None = Field(default=None, ge=1)
    # Connections one process opens at most, and keeps once opened (no overflow).
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # How long a request waits for one of them when all are busy, before answering 503.
    database_pool_timeout_seconds: float = Field(default=10, gt=0, le=120)
    # A checkout first asks the connection whether it is alive: one round trip per request,
    # only worth it where connections die silently (an idle timeout on a proxy in between).
    database_pool_pre_ping: bool = False
    redis_url: str | None = None

    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    # Keys that signed tokens before a rotation: still verified (by key id), never used to sign.
    previous_secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    encryption_keys: SecretStr = SecretStr(DEFAULT_ENCRYPTION_KEYS)
    # Keys the audit chain's HMACs. Never stored in the database: whoever can write there but
    # lacks this key cannot forge an event that `clinicflow audit verify` accepts.
    audit_hmac_key: SecretStr = SecretStr(DEFAULT_AUDIT_HMAC_KEY)
    # Signed chain heads are appended here after each commit (and logged); keep it apart from
    # the database (another volume, shipped off the host). Empty: the log only.
    audit_head_file: Path | None = Path("var/audit-heads.jsonl")
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "clinicflow"
    jwt_audience: str = "clinicflow-api"
    access_token_minutes: int = Field(default=15, ge=1, le=30)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    # argon2id cost: OWASP's recommended 19 MiB, 2 passes, 1 lane (~18 ms of one core). RFC
    # 9106's 64 MiB x 3 over 4 lanes costs ~170 ms of CPU: 20 logins/s would need more cores
    # than a small deployment has, and every login would take them from the reads in flight.
    password_hash_memory_kib: int = Field(default=19456, ge=1024)
    password_hash_time_cost: int = Field(default=2, ge=1)
    password_hash_parallelism: int = Field(default=1, ge=1, le=16)
    lockout_threshold: int = Field(default=5, ge=1)
    lockout_minutes: int = Field(default=30, ge=1)
    # How long a process may answer from its memory of a verified caller (auth/principal_cache.py):
    # the bound on how late a logout or role change made in another process takes effect there.
    auth_cache_seconds: float = Field(default=3.0, ge=0, le=5)
    registration_enabled: bool = True

    first_admin_email: EmailStr | None = None
    first_admin_password: SecretStr | None = None

    frontend_url: str = "http://localhost:3000"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    csp: Literal["strict", "relaxed", "disabled"] = "relaxed"
    # /docs and /redoc: on by default except in production (the OpenAPI document stays served).
    docs_enabled: bool | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Peers (IPs or CIDR networks) whose X-Forwarded-For is believed; nobody's by default.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Bearer token for /metrics; without one, /metrics is closed in production.
    metrics_token: SecretStr | None = None
    rate_limit_enabled: bool = True
    rate_limit_default: str = "600/minute"  # per verified caller (session or API key)
    rate_limit_anonymous: str = "120/minute"  # per IP: no credentials, or ones that fail
    rate_limit_register: str = "5/hour"  # per IP: sign-up costs a hash, a practice, an e-mail
    rate_limit_refresh: str = "30/minute"  # per IP
    rate_limit_public_links: str = "20/minute"  # per IP: invitation lookups, accepts, verify
    rate_limit_profile: str = "10/hour"  # per IP: profile changes (a taken username answers 409)
    rate_limit_login_ip: str = "30/minute"
    rate_limit_login_account: str = "10/minute"
    rate_limit_forgot_ip: str = "10/minute"
    rate_limit_forgot_account: str = "5/hour"

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    mail_from: str = "ClinicFlow <no-reply@clinicflow.local>"
    mail_outbox_dir: Path = Path("var/outbox")

    # n8n automation metrics: how long to wait for n8n, how long figures are cached.
    n8n_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    n8n_cache_seconds: float = Field(default=60.0, ge=1, le=86400)

    # Durable outbox (clinicflow worker): a claim is a lease; an expired lease is retried.
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    outbox_max_attempts: int = Field(default=8, ge=1, le=50)
    outbox_backoff_base_seconds: float = Field(default=5.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    worker_batch_size: int = Field(default=20, ge=1, le=500)
    # None: run the worker inside `clinicflow serve` on the embedded SQLite database only.
    worker_in_process: bool | None = None

    @field_validator("cors_origins", "previous_secret_keys", "trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("audit_head_file", "first_admin_email", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as error:
                raise ValueError(
                    f"TRUSTED_PROXIES entry {entry!r} is not an IP address or CIDR network"
                ) from error
        return value

    @field_validator(
        "rate_limit_default",
        "rate_limit_anonymous",
        "rate_limit_register",
        "rate_limit_refresh",
        "rate_limit_public_links",
        "rate_limit_profile",
        "rate_limit_login_ip",
        "rate_limit_login_account",
        "rate_limit_forgot_ip",
        "rate_limit_forgot_account",
    )
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse

        parse(value)  # raises ValueError naming the bad text, e.g. "10/minute" is expected
        return value

    @field_validator("database_url", "migrations_database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        """Accept the usual `postgresql://` form and pick the async driver ourselves."""
        if value is None:
            return None
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value.removeprefix(prefix)
        if value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + value.removeprefix("sqlite://")
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError(
                "must be a PostgreSQL URL (postgresql://user:password@host:port/database) or a "
                "SQLite one (sqlite:///path/file.db)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:  # REDIS_URL= (empty): no Redis
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
        except ValueError as error:
            raise ValueError(f"is not a URL: {error}") from error
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be redis://host:port/db, rediss://… (TLS) or unix://path")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment != "production":
            return self
        _require_strong(
            "SECRET_KEY", self.secret_key, DEFAULT_SECRET_KEY,
            "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`",
        )  # fmt: skip
        for previous in self.previous_secret_keys:  # a weak one would sign tokens that verify
            _require_strong("PREVIOUS_SECRET_KEYS", previous, DEFAULT_SECRET_KEY, "old keys only")
        _require_strong(
            "AUDIT_HMAC_KEY", self.audit_hmac_key, DEFAULT_AUDIT_HMAC_KEY,
            "never stored in the database; keep it safe: the audit trail verifies only with it",
        )  # fmt: skip
        if self.audit_hmac_key.get_secret_value() == self.secret_key.get_secret_value():
            raise SettingsError("AUDIT_HMAC_KEY must differ from SECRET_KEY in production.")
        keys = self.encryption_keys.get_secret_value()
        if keys == DEFAULT_ENCRYPTION_KEYS:
            raise SettingsError(
                "ENCRYPTION_KEYS must be set in production (`clinicflow records new-key KEY_ID`)."
            )
        try:
            unsafe = unsafe_key_ids(keys, DEFAULT_ENCRYPTION_KEYS)
        except EncryptionConfigError as error:
            raise SettingsError(f"ENCRYPTION_KEYS: {error}") from error
        if unsafe:
            raise SettingsError(
                f"ENCRYPTION_KEYS: the key of {', '.join(unsafe)} is the published development "
                "key or not random; make one with `clinicflow records new-key KEY_ID`."
            )
        memory, passes = self.password_hash_memory_kib, self.password_hash_time_cost
        if memory < MIN_PASSWORD_HASH_MEMORY_KIB or memory * passes < MIN_PASSWORD_HASH_WORK:
            raise SettingsError(
                "PASSWORD_HASH_MEMORY_KIB x PASSWORD_HASH_TIME_COST is below OWASP's argon2id "
                f"minimum in production: at least {MIN_PASSWORD_HASH_MEMORY_KIB} KiB and "
                f"{MIN_PASSWORD_HASH_WORK} KiB-passes (e.g. 19456 x 2)."
            )
        return self

    @field_validator("web_concurrency", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def serves_docs(self) -> bool:
        return (
            self.docs_enabled
            if self.docs_enabled is not None
            else (self.environment != "production")
        )

    @property
    def api_workers(self) -> int:
        """How many processes `clinicflow serve` starts without --workers. One on the embedded
        database, which delivers its messages from inside its one server process. Else
        WEB_CONCURRENCY; else, in production with Redis (rate limits shared by the processes),
        one per core this process may run on (a Python process uses one core however many
        requests wait), two to four: each holds up to twice DATABASE_POOL_SIZE connections, and
        four fit PostgreSQL's default of 100 with room for the workers. Else one."""
        if not self.is_postgres:
            return 1
        if self.web_concurrency is not None:
            return self.web_concurrency
        if self.environment == "production" and self.redis_url:
            return min(max(_usable_cores(), 2), 4)
        return 1

    @property
    def runs_worker_in_process(self) -> bool:
        if self.worker_in_process is not None:
            return self.worker_in_process
        return not self.is_postgres

    @property
    def allows_private_targets(self) -> bool:
        """Whether outgoing calls (webhooks, n8n) may go to loopback, private or link-local
        addresses: outside production only, so local receivers work in development and tests
        while production refuses to be aimed at its own network."""
        return self.environment != "production"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def migrations_url(self) -> str:
        return self.migrations_database_url or self.database_url


MIN_DISTINCT_CHARACTERS = 10


def _require_strong(name: str, value: SecretStr, default: str, hint: str) -> None:
    secret = value.get_secret_value()
    # Few distinct characters ("xxxx…", "abab…") is a pattern, whatever its length.
    distinct = len(set(secret))
    if secret == default or len(secret) < MIN_SECRET_LENGTH or distinct < MIN_DISTINCT_CHARACTERS:
        raise SettingsError(
            f"{name} must be set to a random value of at least {MIN_SECRET_LENGTH} characters "
            f"in production ({hint})."
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()


def _usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1

"""Test harness: a real PostgreSQL database per run (per xdist worker), built by the migrations.

Roles mirror production: the app connects as a NOSUPERUSER, NOBYPASSRLS role that owns nothing;
migrations run as a separate owner role; a superuser connection is used only to create and drop
them and to empty the tables between tests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from clinicflow.core import migrate
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from clinicflow.models import Base
from tests import documented_statuses, services

ResetDatabase = Callable[[], Awaitable[None]]
_throwaways = services.Throwaways()


def pytest_configure(config: pytest.Config) -> None:
    """Once per run, in the xdist controller (workers inherit its environment): find or start
    the PostgreSQL and Redis servers the suite needs, or stop with one clear line."""
    if hasattr(config, "workerinput"):
        return
    try:
        services.provide(_throwaways)
    except services.ServiceUnavailable as error:
        _throwaways.stop()
        pytest.exit(f"The test suite needs PostgreSQL and Redis: {error}.", returncode=3)
    for note in _throwaways.notes:
        print(note)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        _throwaways.stop()


_UNDOCUMENTED_KEY = "undocumented_statuses"
_undocumented_in_workers: set[str] = set()


def pytest_testnodedown(node: object, error: object) -> None:
    """xdist controller: gather what each worker saw answered but not documented."""
    output = getattr(node, "workeroutput", {})
    _undocumented_in_workers.update(output.get(_UNDOCUMENTED_KEY, []))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a route answered a status its OpenAPI operation does not list."""
    if documented_statuses.OBSERVED:
        document = create_app(make_test_settings()).openapi()
        found = documented_statuses.undocumented(documented_statuses.OBSERVED, document)
    else:
        found = []
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_UNDOCUMENTED_KEY] = found
        return
    missing = sorted(_undocumented_in_workers.union(found))
    if missing:
        print("\nStatuses answered but missing from the OpenAPI document:")
        for line in missing:
            print(f"  {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@dataclass(frozen=True, slots=True)
class PgTestDatabase:
    name: str
    owner_role: str
    app_role: str
    password: str
    admin_url: str  # superuser, on the test database

    def url_for(self, role: str) -> str:
        url = make_url(services.postgres_url())
        return url.set(username=role, password=self.password, database=self.name).render_as_string(
            hide_password=False
        )

    @property
    def owner_url(self) -> str:
        return self.url_for(self.owner_role)

    @property
    def app_url(self) -> str:
        return self.url_for(self.app_role)


async def _admin_execute(statements: list[str], url: str | None = None) -> None:
    engine = create_async_engine(url or services.postgres_url(), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def create_pg_database(label: str) -> PgTestDatabase:
    suffix = f"{label}_{os.getpid()}_{secrets.token_hex(3)}"
    database = PgTestDatabase(
        name=f"cf_test_{suffix}",
        owner_role=f"cf_owner_{suffix}",
        app_role=f"cf_app_{suffix}",
        password=secrets.token_hex(12),
        admin_url=make_url(services.postgres_url())
        .set(database=f"cf_test_{suffix}")
        .render_as_string(hide_password=False),
    )
    asyncio.run(
        _admin_execute(
            [
                f"CREATE ROLE {database.owner_role} LOGIN PASSWORD '{database.password}' "
                "NOSUPERUSER NOBYPASSRLS CREATEROLE",
                f"CREATE DATABASE {database.name} OWNER {database.owner_role}",
            ]
        )
    )
    return database


def drop_pg_database(database: PgTestDatabase) -> None:
    asyncio.run(
        _admin_execute(
            [
                f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)",
                f"DROP ROLE IF EXISTS {database.app_role}",
                f"DROP ROLE IF EXISTS {database.owner_role}",
            ]
        )
    )


def make_test_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "password_hash_memory_kib": 1024,  # argon2id still, just cheap enough for a test suite
        "password_hash_time_cost": 1,
        "log_level": "WARNING",
        "mail_outbox_dir": "var/test-outbox",
        "audit_head_file": None,  # tests that check exported heads give their own file
        "rate_limit_enabled": False,  # tests/test_rate_limits.py turns it on with small limits
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_production_settings(**overrides: object) -> Settings:
    """Production as the validator accepts it: real secrets, OWASP's cheapest argon2id."""
    values: dict[str, object] = {
        "environment": "production",
        "secret_key": "LzJpG-O1c7QdR-G3KO1uPS35zPo0AcBV5RhEwdvew-QAT-h_",
        "encryption_keys": "k1:gQnVfnalDb2vfkT2vaZLp-xZD-3h_icGlSbP_TZ0-Us",
        "audit_hmac_key": "6Qz1jOj41C0Y8wlQWHsm4TRlgZALydmlratWOzBv",
        "password_hash_memory_kib": 7168,
        "password_hash_time_cost": 5,
    }
    values.update(overrides)
    return make_test_settings(**values)


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[PgTestDatabase]:
    database = create_pg_database(worker_id)
    try:
        migrate.upgrade(
            make_test_settings(
                database_url=database.app_url,
                migrations_database_url=database.owner_url,
                app_db_role=database.app_role,
                app_db_password=database.password,
            )
        )
        yield database
    finally:
        drop_pg_database(database)


@pytest.fixture(scope="session")
def settings(pg_database: PgTestDatabase) -> Settings:
    return make_test_settings(database_url=pg_database.app_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def admin_engine(pg_database: PgTestDatabase) -> AsyncIterator[AsyncEngine]:
    """Superuser on the test database: catalogue checks, raw bytes, cleanup."""
    engine = create_async_engine(pg_database.admin_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def reset_database(admin_engine: AsyncEngine) -> ResetDatabase:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)

    async def reset() -> None:
        async with admin_engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} CASCADE"))

    return reset


@pytest.fixture
async def db(app: FastAPI, reset_database: ResetDatabase) -> AsyncIterator[FastAPI]:
    """The app with empty tables afterwards; tests commit for real (concurrency is tested)."""
    yield app
    await reset_database()


@pytest.fixture
async def client(db: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(
        app=documented_statuses.recording(db), client=("203.0.113.10", 5000)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http

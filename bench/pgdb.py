"""A throw-away PostgreSQL database for a benchmark, with roles as production has them.

The owner role (NOSUPERUSER NOBYPASSRLS) migrates and seeds; the app role (created by the
migrations' grants, as in tests/conftest.py) is what the server and the baselines connect as,
so RLS applies to every measured query.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from clinicflow.core import migrate
from clinicflow.core.settings import Settings

SUPERUSER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    name: str
    owner_role: str
    app_role: str
    password: str
    superuser_url: str

    def url(self, role: str, driver: str = "postgresql+asyncpg") -> str:
        return (
            make_url(self.superuser_url)
            .set(drivername=driver, username=role, password=self.password, database=self.name)
            .render_as_string(hide_password=False)
        )

    @property
    def owner_dsn(self) -> str:
        return self.url(self.owner_role, "postgresql")

    @property
    def app_dsn(self) -> str:
        return self.url(self.app_role, "postgresql")

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": self.url(self.app_role),
            "migrations_database_url": self.url(self.owner_role),
            "app_db_role": self.app_role,
            "app_db_password": self.password,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def _as_superuser(url: str, statements: list[str]) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def create(superuser_url: str = SUPERUSER_URL) -> BenchDatabase:
    """cf_bench_<random> owned by a fresh owner role, migrated, with its app role granted."""
    suffix = secrets.token_hex(4)
    database = BenchDatabase(
        name=f"cf_bench_{suffix}",
        owner_role=f"cf_bench_owner_{suffix}",
        app_role=f"cf_bench_app_{suffix}",
        password=secrets.token_hex(12),
        superuser_url=superuser_url,
    )
    asyncio.run(
        _as_superuser(
            superuser_url,
            [
                f"CREATE ROLE {database.owner_role} LOGIN PASSWORD '{database.password}' "
                "NOSUPERUSER NOBYPASSRLS CREATEROLE",
                f"CREATE DATABASE {database.name} OWNER {database.owner_role}",
            ],
        )
    )
    try:
        migrate.upgrade(database.settings())
    except BaseException:
        drop(database)
        raise
    return database


def drop(database: BenchDatabase) -> None:
    asyncio.run(
        _as_superuser(
            database.superuser_url,
            [
                f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)",
                f"DROP ROLE IF EXISTS {database.app_role}",
                f"DROP ROLE IF EXISTS {database.owner_role}",
            ],
        )
    )

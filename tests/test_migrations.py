"""The migrations build exactly the models' schema, and walk down and up again cleanly."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from clinicflow.core import migrate
from tests.conftest import PgTestDatabase, create_pg_database, drop_pg_database, make_test_settings


def test_models_and_migrations_do_not_drift(pg_database: PgTestDatabase) -> None:
    migrate.check(make_test_settings(database_url=pg_database.owner_url))


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return set(rows.scalars())
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade_on_postgres() -> None:
    database = create_pg_database("updown")
    try:
        settings = make_test_settings(
            database_url=database.app_url,
            migrations_database_url=database.owner_url,
            app_db_role=database.app_role,
            app_db_password=database.password,
        )
        migrate.upgrade(settings)
        upgraded = asyncio.run(_tables(database.admin_url))
        migrate.downgrade(settings, "base")
        assert asyncio.run(_tables(database.admin_url)) == {"alembic_version"}
        migrate.upgrade(settings)
        assert asyncio.run(_tables(database.admin_url)) == upgraded
        assert {"tenants", "users", "memberships", "audit_events"} <= upgraded
    finally:
        drop_pg_database(database)

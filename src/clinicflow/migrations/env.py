"""Alembic environment: async engine, URL from `MIGRATIONS_DATABASE_URL` (the owner role)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from clinicflow.core.database import create_engine
from clinicflow.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_async(config.get_main_option("sqlalchemy.url") or ""))


if context.is_offline_mode():
    raise SystemExit(
        "Offline (SQL script) migrations are not supported; run `clinicflow db upgrade`."
    )
run_migrations_online()

"""Alembic driven from code, so `clinicflow db ...` works from an installed package."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from clinicflow.audit.legacy import AUDIT_KEY_ATTRIBUTE
from clinicflow.core.database import create_engine
from clinicflow.core.rls import ensure_app_role
from clinicflow.core.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@lru_cache(maxsize=1)
def code_revisions() -> tuple[str, frozenset[str]]:
    """The revision this code migrates to, and every revision it knows."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = scripts.get_current_head()
    assert head is not None  # one linear history
    return head, frozenset(script.revision for script in scripts.walk_revisions())


def schema_check(database_revision: str | None) -> str:
    """Whether the database's schema is what this code needs: "ok", or the error naming the fix.
    A revision this code does not know is newer (a rolling deploy migrated ahead): ok."""
    head, known = code_revisions()
    if database_revision == head or (database_revision and database_revision not in known):
        return "ok"
    return (
        f"error: schema at {database_revision or 'nothing'}, this code needs {head}; "
        "run `clinicflow db upgrade`"
    )


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate as the owner role, then grant the application role (PostgreSQL). Migrations get
    the audit key (0029 signs where each chain's legacy events end); the database never does."""
    config = alembic_config(settings.migrations_url)
    config.attributes[AUDIT_KEY_ATTRIBUTE] = settings.audit_hmac_key.get_secret_value().encode()
    command.upgrade(config, revision)
    if settings.is_postgres and settings.app_db_role:
        password = settings.app_db_password.get_secret_value() if settings.app_db_password else None
        asyncio.run(_run_sync(settings.migrations_url, lambda c: ensure_app_role(
            c, settings.app_db_role or "", password)))  # fmt: skip


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.migrations_url), revision)


def current(settings: Settings) -> None:
    command.current(alembic_config(settings.migrations_url), verbose=True)


def history(settings: Settings) -> None:
    command.history(alembic_config(settings.migrations_url), verbose=False)


def revision(settings: Settings, message: str, *, autogenerate: bool) -> None:
    command.revision(
        alembic_config(settings.migrations_url), message=message, autogenerate=autogenerate
    )


def check(settings: Settings) -> None:
    """Raises when the models and the migrated database differ."""
    command.check(alembic_config(settings.migrations_url))


async def _run_sync(url: str, work: Callable[[Connection], object]) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(work)
    finally:
        await engine.dispose()


def run_on(url: str, work: Callable[[Connection], object]) -> None:
    """Run a function taking a sync Connection inside one transaction (CLI helpers)."""
    asyncio.run(_run_sync(url, work))

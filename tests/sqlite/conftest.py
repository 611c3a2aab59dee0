"""The same app on the embedded SQLite database (no RLS: the application layer isolates)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from clinicflow.core import migrate
from clinicflow.core.settings import Settings
from clinicflow.main import create_app
from clinicflow.models import Base
from tests.conftest import ResetDatabase, make_test_settings


@pytest.fixture(scope="session")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqlite") / "clinicflow.db"


@pytest.fixture(scope="session")
def settings(sqlite_path: Path) -> Settings:
    settings = make_test_settings(database_url=f"sqlite+aiosqlite:///{sqlite_path}")
    migrate.upgrade(settings)
    return settings


@pytest.fixture(scope="session")
def reset_database(app: FastAPI) -> ResetDatabase:
    engine: AsyncEngine = app.state.database.engine

    async def reset() -> None:
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))

    return reset


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """Its own app: a session fixture is cached per definition, not per settings override."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application

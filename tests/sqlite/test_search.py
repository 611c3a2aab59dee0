"""Patient search on the embedded SQLite database: the same word-prefix rules, the application
scope on the terms table, and migration 0025 filling the terms of existing patients."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from clinicflow.core import migrate
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.patients.models import PatientSearchTerm
from tests.conftest import make_test_settings
from tests.factories import make_member
from tests.test_patient_search import (
    test_a_rename_moves_the_patient_in_search_pages,
    test_searches_of_every_length_page_like_the_whole_answer,
)

# The same answers on the embedded database (which reads the matches through the terms).
__all__ = [
    "test_a_rename_moves_the_patient_in_search_pages",
    "test_searches_of_every_length_page_like_the_whole_answer",
]

PATIENTS = "/api/v1/patients"


async def test_word_prefix_search_within_the_practice(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    owner, stranger = await make_member(db, role="owner"), await make_member(db, role="owner")
    for name in ("Ana Lima", "Ana Souza", "Bruno 100%"):
        response = await client.post(PATIENTS, json={"full_name": name}, headers=owner.headers)
        assert response.status_code == 201
    await client.post(PATIENTS, json={"full_name": "Ana Lima"}, headers=stranger.headers)

    async def names(q: str) -> list[str]:
        response = await client.get(PATIENTS, params={"q": q}, headers=owner.headers)
        return [item["full_name"] for item in response.json()["items"]]

    assert await names("ana lim") == ["Ana Lima"]  # one: not the other practice's
    assert await names("ANA") == ["Ana Lima", "Ana Souza"]
    assert await names("ima") == []
    assert await names("%") == ["Bruno 100%"]
    # The application scope covers the terms table (the only layer on SQLite).
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        tenants = set((await session.execute(select(PatientSearchTerm.tenant_id))).scalars())
        await set_session_tenant(session, None)
        unscoped = (await session.execute(select(PatientSearchTerm))).scalars().all()
    assert tenants == {owner.tenant_id}
    assert unscoped == []


async def _fill(url: str, statements: list[str]) -> list[tuple[str, str]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            rows: list[tuple[str, str]] = []
            for statement in statements:
                result = await connection.execute(text(statement))
                if result.returns_rows:
                    rows = [(row[0], row[1]) for row in result]
            return rows
    finally:
        await engine.dispose()


def test_migration_0025_indexes_existing_patients(tmp_path: Path) -> None:
    settings = make_test_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(settings, "0024")
    tenant, patient = uuid.uuid4().hex, uuid.uuid4().hex
    asyncio.run(
        _fill(
            settings.database_url,
            [
                "INSERT INTO tenants (id, name, read_only, timezone, settings, created_at, "
                f"updated_at) VALUES ('{tenant}', 'P', 0, 'UTC', '{{}}', '2026-01-01', "
                "'2026-01-01')",
                "INSERT INTO patients (tenant_id, id, full_name, custom_fields, active, "
                f"search_text, created_at, updated_at) VALUES ('{tenant}', '{patient}', "
                "'Zoë Araújo', '{}', 1, '', '2026-01-01', '2026-01-01')",
            ],
        )
    )
    migrate.upgrade(settings)
    rows = asyncio.run(
        _fill(settings.database_url, ["SELECT patient_id, term FROM patient_search_terms"])
    )
    assert sorted(rows) == [(patient, "araujo"), (patient, "zoe")]

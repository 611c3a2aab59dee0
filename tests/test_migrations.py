"""The migrations build exactly the models' schema, and walk down and up again cleanly."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from clinicflow.core import migrate
from clinicflow.core.settings import Settings
from tests.conftest import PgTestDatabase, create_pg_database, drop_pg_database, make_test_settings


def test_models_and_migrations_do_not_drift(pg_database: PgTestDatabase) -> None:
    migrate.check(make_test_settings(database_url=pg_database.owner_url))


def _migration_settings(database: PgTestDatabase) -> Settings:
    """Settings that migrate a fresh test database as its owner role, granting its app role."""
    return make_test_settings(
        database_url=database.app_url,
        migrations_database_url=database.owner_url,
        app_db_role=database.app_role,
        app_db_password=database.password,
    )


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
        settings = _migration_settings(database)
        migrate.upgrade(settings)
        upgraded = asyncio.run(_tables(database.admin_url))
        migrate.downgrade(settings, "base")
        assert asyncio.run(_tables(database.admin_url)) == {"alembic_version"}
        migrate.upgrade(settings)
        assert asyncio.run(_tables(database.admin_url)) == upgraded
        assert {"tenants", "users", "memberships", "audit_events"} <= upgraded
    finally:
        drop_pg_database(database)


async def _owner_rows(url: str, tenant_id: uuid.UUID, statements: list[str]) -> list[Any]:
    """Run statements as the owner role inside the practice (FORCE RLS binds the owner too)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)}
            )
            result: list[Any] = []
            for statement in statements:
                outcome = await connection.execute(text(statement), {"t": tenant_id})
                result = list(outcome.all()) if outcome.returns_rows else result
            return result
    finally:
        await engine.dispose()


def test_0025_and_0026_give_existing_patients_their_search_terms_in_page_order() -> None:
    database = create_pg_database("terms")
    tenant_id = uuid.uuid4()
    try:
        settings = _migration_settings(database)
        migrate.upgrade(settings, "0024")
        patient = (
            "INSERT INTO patients (tenant_id, id, full_name, email, phone, document, "
            "custom_fields, active, deleted_at, search_text) VALUES (:t, '{id}', '{name}', "
            "{email}, {phone}, NULL, '{{}}', true, {deleted}, '')"
        )
        asyncio.run(
            _owner_rows(
                database.owner_url,
                tenant_id,
                [
                    "INSERT INTO tenants (id, name, read_only, timezone, settings) "
                    "VALUES (:t, 'Practice', false, 'UTC', '{}')",
                    patient.format(
                        id=uuid.uuid4(), name="João Lima", email="'jl@clinic.example'",
                        phone="'+55 11 91234-5678'", deleted="NULL",
                    ),
                    patient.format(
                        id=uuid.uuid4(), name="Gone Away", email="NULL", phone="NULL",
                        deleted="now()",
                    ),
                ],
            )
        )  # fmt: skip
        migrate.upgrade(settings)
        terms = asyncio.run(
            _owner_rows(
                database.owner_url,
                tenant_id,
                [
                    "SELECT p.full_name, t.term, t.head, t.full_name FROM patient_search_terms t "
                    "JOIN patients p ON p.tenant_id = t.tenant_id AND p.id = t.patient_id"
                ],
            )
        )
    finally:
        drop_pg_database(database)
    assert {row[0] for row in terms} == {"João Lima"}  # deleted: found by nothing
    assert all(head == term[:5] and filed == name for name, term, head, filed in terms)
    assert {row[1] for row in terms} == {
        "joao", "lima", "jl", "clinic", "example",
        "55", "11", "91234", "5678", "5511912345678", "11912345678", "912345678",
    }  # fmt: skip

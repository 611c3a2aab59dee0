"""bench/queries.py: the SQL it captures from the repositories is what the app runs, so the
baselines of `make bench` (raw asyncpg, the Starlette reference) answer the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
from bench.queries import hot_queries
from fastapi import FastAPI

from clinicflow.bulkseed import BulkPlan, seed_bulk
from clinicflow.core.database import create_database
from clinicflow.patients.repository import PatientFilters, PatientRepository
from tests.conftest import PgTestDatabase, make_test_settings


async def test_captured_queries_return_what_the_repositories_return(
    db: FastAPI, pg_database: PgTestDatabase
) -> None:
    settings = make_test_settings(
        database_url=pg_database.app_url, migrations_database_url=pg_database.owner_url
    )
    seeded = await seed_bulk(settings, BulkPlan(2, 120, 1, professionals=2))
    practice = seeded.practices[0]
    week = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    database = create_database(settings)
    try:
        async with database.sessionmaker() as session:
            session.info["tenant_id"] = practice.tenant_id
            async with session.begin():
                first_page = await PatientRepository(session).page(PatientFilters(), 50, None)
                two_page = await PatientRepository(session).page(
                    PatientFilters(q="ana silva"), 50, None
                )
    finally:
        await database.dispose()
    cursor = (first_page[49].full_name, first_page[49].id)
    # A database never connected before, as the bench's is: its first connection's own
    # statements (the dialect's probe, which ends with a ROLLBACK) are no statement of a query.
    fresh = create_database(settings)
    try:
        queries = await hot_queries(
            fresh, practice.tenant_id, deep_cursor=cursor, common="silva", rare="zz-none",
            first_name="maria", two_common="ana silva",
            professional=practice.professional_ids[0], week=week - timedelta(days=7),
            slot=(week, week + timedelta(minutes=30)),
        )  # fmt: skip
    finally:
        await fresh.dispose()

    url = pg_database.app_url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(url)
    try:
        tenant = practice.tenant_id
        listed = await queries.list_first.rows(connection, tenant)
        deep = await queries.list_deep.rows(connection, tenant)
        rare = await queries.search_rare.rows(connection, tenant)
        two = await queries.search_two_common.rows(connection, tenant)
        agenda = await queries.agenda_week.rows(connection, tenant)
    finally:
        await connection.close()
    assert [row["id"] for row in listed] == [patient.id for patient in first_page]
    assert len(listed) == 51  # limit + 1, which tells the API there is a next page
    assert deep[0]["id"] == first_page[50].id  # the keyset page continues after the cursor
    assert rare == []
    assert [row["id"] for row in two] == [patient.id for patient in two_page]
    assert {row["tenant_id"] for row in agenda} <= {practice.tenant_id}
    # A search is planned for its words each time, in the app and in the baselines alike.
    assert queries.search_two_common.before == (
        ("SET LOCAL plan_cache_mode = force_custom_plan", ()),
    )
    assert queries.list_first.before == ()
    # Availability reads the practice's calendar first; the baselines read it too.
    assert ["FROM tenants" in sql for sql, _ in queries.availability.before] == [True]
    assert all(row["professional_id"] == practice.professional_ids[0] for row in agenda)

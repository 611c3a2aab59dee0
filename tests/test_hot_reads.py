"""Hot reads (`core.hotread`) on PostgreSQL: what they refuse, and the driver settings they keep.
Their tenant filter is shown in tests/test_tenant_isolation.py."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Text, bindparam, select

from clinicflow.core.database import create_database
from clinicflow.core.hotread import HotRead
from clinicflow.core.tenancy import set_session_tenant
from clinicflow.finance.models import FinancialEntry
from clinicflow.patients.models import Patient
from clinicflow.patients.repository import PatientFilters, PatientRepository
from tests.factories import make_member

NAMED_PATIENT_READS = (
    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM patients%' "
    "AND statement NOT LIKE '%pg_prepared_statements%'"
)


async def test_a_column_the_driver_path_cannot_convert_is_refused(db: FastAPI) -> None:
    """asyncpg's numeric conversion needs the column's type code, which a statement compiled
    once does not have: a clear error on first use, never a wrong value."""
    owner = await make_member(db, role="owner")
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        with pytest.raises(ValueError, match="amount"):
            await HotRead(select(FinancialEntry.amount)).rows(session, {})


@pytest.mark.parametrize(
    ("query", "named"), [("", True), ("?prepared_statement_cache_size=0", False)]
)
async def test_statement_caches_follow_the_url(db: FastAPI, query: str, named: bool) -> None:
    """Behind PgBouncer's transaction pooling (SQLAlchemy's cache off in the URL, as
    docs/SCALING.md says) a hot read leaves no named statement on the server connection, which
    another client's transaction could land on without it; otherwise it is prepared once."""
    owner = await make_member(db, role="owner")
    database = create_database(db.state.settings, url=db.state.settings.database_url + query)
    try:
        async with database.sessionmaker() as session:
            await set_session_tenant(session, owner.tenant_id)
            async with session.begin():
                await PatientRepository(session).page(PatientFilters(), 10, None)
                raw: Any = (await session.connection()).sync_connection.connection
                kept = await raw.driver_connection.fetchval(NAMED_PATIENT_READS)
    finally:
        await database.dispose()
    assert (kept > 0) is named


async def test_a_hot_read_sees_the_sessions_own_pending_writes(db: FastAPI) -> None:
    """As an ORM query would: a patient added and not yet flushed is on the page."""
    owner = await make_member(db, role="owner")
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        async with session.begin():
            session.add(Patient(full_name="Pending Patient", search_text="pending patient"))
            page = await PatientRepository(session).page(PatientFilters(), 10, None)
            await session.rollback()
    assert [row.full_name for row in page] == ["Pending Patient"]


async def test_a_hot_read_missing_a_value_it_needs_is_refused(db: FastAPI) -> None:
    """A value left out is a programming error, not a NULL that silently matches nothing."""
    owner = await make_member(db, role="owner")
    read = HotRead(select(Patient.id).where(Patient.full_name == bindparam("name", type_=Text())))
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, owner.tenant_id)
        with pytest.raises(KeyError, match="name"):
            await read.rows(session, {})

"""SPEC §2 layer 3 (PostgreSQL RLS) and layer 2 (the application scope), shown on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from clinicflow.appointments.repository import AppointmentFilters, AppointmentRepository
from clinicflow.audit import service as audit
from clinicflow.bulkseed import BulkPlan, seed_bulk
from clinicflow.core import tenancy
from clinicflow.core.database import create_database, create_engine
from clinicflow.core.rls import POLICY_NAME
from clinicflow.core.security import hasher_for
from clinicflow.core.tenancy import TenantScopeViolation, set_session_tenant, tenant_context
from clinicflow.patients.repository import PatientFilters, PatientRepository
from clinicflow.tenants.models import Membership, Role
from clinicflow.tenants.service import add_member, create_tenant
from clinicflow.users.service import create_user
from tests.conftest import PgTestDatabase
from tests.statements import statements_sent

SET_TENANT = text("SELECT set_config('app.tenant_id', :tid, true)")


@dataclass(frozen=True)
class TwoTenants:
    a: uuid.UUID
    b: uuid.UUID
    user_a: uuid.UUID
    user_b: uuid.UUID


@pytest.fixture
async def two_tenants(db: FastAPI) -> TwoTenants:
    settings = db.state.settings
    async with db.state.database.sessionmaker() as session, session.begin():
        ids = []
        for name in ("Tenant A", "Tenant B"):
            tenant = await create_tenant(session, name=name)
            user = await create_user(
                session, hasher_for(settings), email=f"owner@{name[-1].lower()}.example",
                password="k9#vQ2pX-long", full_name=f"Owner {name}",
            )  # fmt: skip
            await add_member(session, tenant, user, Role.OWNER)
            async with tenant_context(session, tenant.id):
                await audit.record(session, "test.event", subject_type="tenant", subject_id=name)
            ids += [tenant.id, user.id]
    return TwoTenants(a=ids[0], b=ids[2], user_a=ids[1], user_b=ids[3])


@pytest.fixture
async def app_role_engine(pg_database: PgTestDatabase) -> AsyncIterator[AsyncEngine]:
    """The application role, one pooled connection, so reuse of that connection is observable;
    configured as the app's (its connections begin a session's transaction in its tenant)."""
    engine = create_engine(pg_database.app_url, pool_size=1)
    yield engine
    await engine.dispose()


async def tenant_tables(connection: AsyncConnection) -> list[str]:
    """Every table with a tenant_id column, from the catalogue (new tables included)."""
    rows = await connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid WHERE n.nspname = 'public' "
            "AND c.relkind IN ('r', 'p') AND a.attname = 'tenant_id' AND NOT a.attisdropped "
            "ORDER BY 1"
        )
    )
    return list(rows.scalars())


async def test_catalogue_lists_the_known_tenant_tables(admin_engine: AsyncEngine) -> None:
    async with admin_engine.connect() as connection:
        tables = await tenant_tables(connection)
    assert {"memberships", "audit_events"} <= set(tables)


async def test_every_tenant_table_forces_the_fail_closed_policy(admin_engine: AsyncEngine) -> None:
    async with admin_engine.connect() as connection:
        for table in await tenant_tables(connection):
            flags = (
                await connection.execute(
                    text(
                        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                        "WHERE relname = :t AND relnamespace = 'public'::regnamespace"
                    ),
                    {"t": table},
                )
            ).one()
            assert flags == (True, True), table
            policies = (
                await connection.execute(
                    text(
                        "SELECT policyname, cmd, qual, with_check FROM pg_policies "
                        "WHERE schemaname = 'public' AND tablename = :t"
                    ),
                    {"t": table},
                )
            ).all()
            assert len(policies) == 1, table
            name, command, using, check = policies[0]
            assert (name, command) == (POLICY_NAME, "ALL")
            for predicate in (using, check):
                assert "current_setting('app.tenant_id'::text, true)" in predicate, table
                assert "NULLIF" in predicate.upper(), table


async def test_app_role_cannot_bypass_rls(
    admin_engine: AsyncEngine, pg_database: PgTestDatabase
) -> None:
    async with admin_engine.connect() as connection:
        role = (
            await connection.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"),
                {"r": pg_database.app_role},
            )
        ).one()
        owned = (
            await connection.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                    "WHERE r.rolname = :r"
                ),
                {"r": pg_database.app_role},
            )
        ).scalar_one()
    assert tuple(role) == (False, False)
    assert owned == 0


async def test_no_tenant_set_sees_no_rows_and_cannot_insert(
    two_tenants: TwoTenants, app_role_engine: AsyncEngine
) -> None:
    async with app_role_engine.connect() as connection:
        for table in await tenant_tables(connection):
            count = (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
            assert count == 0, table
        await connection.rollback()
        with pytest.raises(ProgrammingError, match="row-level security"):
            await connection.execute(
                text(
                    "INSERT INTO memberships (tenant_id, id, user_id, role, created_at, "
                    "updated_at) VALUES (:t, :id, :u, 'viewer', now(), now())"
                ),
                {"t": two_tenants.a, "id": uuid.uuid4(), "u": two_tenants.user_b},
            )


async def test_tenant_a_sees_only_its_rows(
    two_tenants: TwoTenants, app_role_engine: AsyncEngine
) -> None:
    async with app_role_engine.begin() as connection:
        await connection.execute(SET_TENANT, {"tid": str(two_tenants.a)})
        for table in ("memberships", "audit_events"):
            tenants = (await connection.execute(text(f"SELECT tenant_id FROM {table}"))).scalars()
            assert set(tenants) == {two_tenants.a}, table


async def test_writes_with_another_tenants_id_fail(
    two_tenants: TwoTenants, app_role_engine: AsyncEngine
) -> None:
    async with app_role_engine.connect() as connection:
        await connection.execute(SET_TENANT, {"tid": str(two_tenants.a)})
        with pytest.raises(ProgrammingError, match="row-level security"):
            await connection.execute(
                text(
                    "INSERT INTO memberships (tenant_id, id, user_id, role, created_at, "
                    "updated_at) VALUES (:t, :id, :u, 'viewer', now(), now())"
                ),
                {"t": two_tenants.b, "id": uuid.uuid4(), "u": two_tenants.user_a},
            )
        await connection.rollback()
        await connection.execute(SET_TENANT, {"tid": str(two_tenants.a)})
        with pytest.raises(ProgrammingError, match="row-level security"):
            await connection.execute(
                text("UPDATE memberships SET tenant_id = :b"), {"b": two_tenants.b}
            )
        await connection.rollback()
        await connection.execute(SET_TENANT, {"tid": str(two_tenants.a)})
        touched = await connection.execute(
            text("UPDATE memberships SET role = 'viewer' WHERE tenant_id = :b"),
            {"b": two_tenants.b},
        )
        assert touched.rowcount == 0
        await connection.rollback()


async def test_pooled_connection_does_not_carry_the_tenant_over(
    two_tenants: TwoTenants, app_role_engine: AsyncEngine
) -> None:
    async with app_role_engine.begin() as connection:
        await connection.execute(SET_TENANT, {"tid": str(two_tenants.a)})
        first_pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
        assert (await connection.execute(text("SELECT count(*) FROM memberships"))).scalar() == 1
    async with app_role_engine.begin() as connection:
        second_pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
        setting = (
            await connection.execute(text("SELECT current_setting('app.tenant_id', true)"))
        ).scalar()
        count = (await connection.execute(text("SELECT count(*) FROM memberships"))).scalar()
    assert first_pid == second_pid
    assert setting == ""
    assert count == 0


async def test_a_transaction_begins_in_its_tenant_in_one_round_trip(
    two_tenants: TwoTenants, db: FastAPI
) -> None:
    """The tenant's setting goes with the BEGIN (one round trip where two were), and RLS sees
    it from the transaction's first statement."""
    with statements_sent(db) as sent:
        async with db.state.database.sessionmaker() as session:
            await set_session_tenant(session, two_tenants.a)
            seen = set((await session.execute(text("SELECT tenant_id FROM memberships"))).scalars())
            await session.commit()
    assert seen == {two_tenants.a}
    # (The driver reports its own statements a moment later than the cursor's: not in order.)
    assert sorted(statement.rstrip(";") for statement in sent) == [
        f"BEGIN; SELECT set_config('app.tenant_id', '{two_tenants.a}', true)",
        "COMMIT",
        "SELECT tenant_id FROM memberships",
    ]


async def test_a_session_in_no_practice_after_one_in_a_practice_sees_nothing(
    two_tenants: TwoTenants, app_role_engine: AsyncEngine
) -> None:
    """The setting a BEGIN carried is the session's own: the next transaction on the same
    pooled connection, for a session in no practice, has none."""
    async with AsyncSession(app_role_engine) as session:
        await set_session_tenant(session, two_tenants.a)
        first_pid = await session.scalar(text("SELECT pg_backend_pid()"))
        assert await session.scalar(text("SELECT count(*) FROM memberships")) == 1
        await session.commit()
    async with AsyncSession(app_role_engine) as session:
        second_pid = await session.scalar(text("SELECT pg_backend_pid()"))
        setting = await session.scalar(text("SELECT current_setting('app.tenant_id', true)"))
        count = await session.scalar(text("SELECT count(*) FROM memberships"))
    assert first_pid == second_pid
    assert setting == ""
    assert count == 0


async def test_a_connection_dropped_while_pooled_fails_one_begin_and_is_replaced(
    two_tenants: TwoTenants, app_role_engine: AsyncEngine, admin_engine: AsyncEngine
) -> None:
    """A BEGIN that cannot reach the server fails as SQLAlchemy reports a lost connection
    (invalidated, so the pool opens a new one), not as an error of the driver's own."""
    async with AsyncSession(app_role_engine) as session:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
        await session.commit()
    async with admin_engine.begin() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    async with AsyncSession(app_role_engine) as session:
        await set_session_tenant(session, two_tenants.a)
        with pytest.raises(DBAPIError) as failure:
            await session.connection()
        assert failure.value.connection_invalidated
    async with AsyncSession(app_role_engine) as session:
        await set_session_tenant(session, two_tenants.a)
        seen = set((await session.execute(text("SELECT tenant_id FROM memberships"))).scalars())
        assert await session.scalar(text("SELECT pg_backend_pid()")) != pid
    assert seen == {two_tenants.a}


async def test_an_autocommit_session_still_sets_its_tenant(
    two_tenants: TwoTenants, app_role_engine: AsyncEngine
) -> None:
    """Under autocommit the driver begins nothing, so a BEGIN cannot carry the setting: it is
    sent as a statement of its own, as before, never taken as done."""
    engine = app_role_engine.execution_options(isolation_level="AUTOCOMMIT")
    sent: list[str] = []

    def record(*args: object) -> None:
        statement = args[2]
        assert isinstance(statement, str)
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with AsyncSession(engine) as session:
            await set_session_tenant(session, two_tenants.a)
            await session.connection()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert sum("set_config" in statement for statement in sent) == 1


async def _nothing_carried_over(
    engine: AsyncEngine, admin_engine: AsyncEngine, tenants: TwoTenants
) -> None:
    """The pool's next session (one connection) is in no transaction and no practice, and what
    it commits is committed."""
    async with AsyncSession(engine) as session:
        setting = await session.scalar(text("SELECT current_setting('app.tenant_id', true)"))
        count = await session.scalar(text("SELECT count(*) FROM memberships"))
        await session.commit()
    assert setting in (None, "")
    assert count == 0
    async with AsyncSession(engine) as session:
        await set_session_tenant(session, tenants.b)
        rename = text("UPDATE tenants SET name = 'Renamed B' WHERE id = :b")
        await session.execute(rename, {"b": tenants.b})
        await session.commit()
    async with admin_engine.connect() as admin:
        name = await admin.scalar(text("SELECT name FROM tenants WHERE id = :b"), {"b": tenants.b})
    assert name == "Renamed B"


async def test_a_begin_whose_answer_is_lost_discards_its_connection(
    two_tenants: TwoTenants,
    app_role_engine: AsyncEngine,
    admin_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server ran `BEGIN; SELECT set_config(A)` but its answer never came (a timeout):
    that connection may be inside a transaction in practice A, and the driver thinks so too,
    so a later BEGIN there would be a savepoint and a commit a mere release. It is discarded;
    the session fails."""
    real = asyncpg.Connection.execute
    lost: list[str] = []

    async def answer_lost(self: asyncpg.Connection, query: str, *args: object, **kw: object) -> str:
        status: str = await real(self, query, *args, **kw)
        if query.startswith("BEGIN") and "set_config" in query and not lost:
            lost.append(query)
            raise TimeoutError("the answer was lost")
        return status

    monkeypatch.setattr(asyncpg.Connection, "execute", answer_lost)
    async with AsyncSession(app_role_engine) as session:
        await set_session_tenant(session, two_tenants.a)
        with pytest.raises((TimeoutError, DBAPIError)):
            await session.connection()
    assert str(two_tenants.a) in lost[0]
    await _nothing_carried_over(app_role_engine, admin_engine, two_tenants)


async def test_a_request_cancelled_during_its_begin_leaves_no_transaction_behind(
    two_tenants: TwoTenants,
    app_role_engine: AsyncEngine,
    admin_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request cancelled (its client gone) after the server began its transaction in
    practice A, before the answer arrived: the connection is discarded, not pooled with that
    transaction open for the next session, in no practice or another, to run inside."""
    real = asyncpg.Connection.execute
    began = asyncio.Event()

    async def slow_answer(self: asyncpg.Connection, query: str, *args: object, **kw: object) -> str:
        status: str = await real(self, query, *args, **kw)
        if query.startswith("BEGIN") and "set_config" in query and not began.is_set():
            began.set()
            await asyncio.sleep(3600)  # cancelled while waiting for the answer
        return status

    monkeypatch.setattr(asyncpg.Connection, "execute", slow_answer)

    async def request() -> None:
        async with AsyncSession(app_role_engine) as session:
            await set_session_tenant(session, two_tenants.a)
            await session.connection()

    task = asyncio.create_task(request())
    await began.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _nothing_carried_over(app_role_engine, admin_engine, two_tenants)


async def test_truncate_and_audit_rewrites_are_denied(
    two_tenants: TwoTenants, app_role_engine: AsyncEngine
) -> None:
    for statement in (
        "TRUNCATE memberships",
        "UPDATE audit_events SET action = 'forged'",
        "DELETE FROM audit_events",
        "DELETE FROM platform_audit_events",
    ):
        async with app_role_engine.connect() as connection:
            await connection.execute(SET_TENANT, {"tid": str(two_tenants.a)})
            with pytest.raises(DBAPIError, match="permission denied"):
                await connection.execute(text(statement))


async def test_rls_holds_when_the_application_scope_is_removed(
    two_tenants: TwoTenants, db: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tenancy, "apply_tenant_scope", lambda state: None)
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, two_tenants.a)
        seen = (await session.execute(select(Membership.tenant_id))).scalars().all()
        assert set(seen) == {two_tenants.a}
    async with db.state.database.sessionmaker() as session:
        assert (await session.execute(select(Membership))).scalars().all() == []


async def test_application_scope_filters_orm_queries(
    two_tenants: TwoTenants, db: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The application layer alone (RLS neutralised by reading as the same tenant) filters."""
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, two_tenants.b)
        rows = (await session.execute(select(Membership))).scalars().all()
        assert [row.tenant_id for row in rows] == [two_tenants.b]
        await set_session_tenant(session, None)
        assert (await session.execute(select(Membership))).scalars().all() == []


async def test_writing_another_tenants_row_is_refused_before_the_database(
    two_tenants: TwoTenants, db: FastAPI
) -> None:
    async with db.state.database.sessionmaker() as session:
        await set_session_tenant(session, two_tenants.a)
        session.add(
            Membership(tenant_id=two_tenants.b, user_id=two_tenants.user_a, role=Role.VIEWER)
        )
        with pytest.raises(TenantScopeViolation):
            await session.flush()


async def test_hot_reads_filter_by_tenant_without_rls(
    db: FastAPI, pg_database: PgTestDatabase
) -> None:
    """The reads run on the driver (`core.hotread`: list, search, agenda) carry the application
    scope themselves: as the superuser, whom RLS does not restrict, a session scoped to one
    practice still reads only that practice's rows, for each shape of statement."""
    settings = db.state.settings.model_copy(
        update={"migrations_database_url": pg_database.owner_url}
    )
    seeded = await seed_bulk(settings, BulkPlan(2, 60, 1, professionals=1))
    mine, theirs = seeded.practices
    superuser = create_database(settings, url=pg_database.admin_url)
    week = datetime.now(UTC) - timedelta(days=400)
    try:
        async with superuser.sessionmaker() as session:
            await set_session_tenant(session, mine.tenant_id)
            async with session.begin():
                patients = PatientRepository(session)
                listed = await patients.page(PatientFilters(), 200, None)
                first, *_, last = listed[0].full_name.lower().split()
                # One long word, two words, a short word (under several heads), a letter.
                searches = (last, f"{first} {last}", first[:2], f"{first[0]} {last}")
                pages = [listed] + [
                    await patients.page(PatientFilters(q=q), 200, None) for q in searches
                ]
                appointments = await AppointmentRepository(session).page(
                    AppointmentFilters(start_from=week), 200, None
                )
            # The same reads in the other practice's scope, so both have rows to leak.
            await set_session_tenant(session, theirs.tenant_id)
            async with session.begin():
                theirs_listed = await PatientRepository(session).page(PatientFilters(), 200, None)
    finally:
        await superuser.dispose()
    assert len(listed) == len(theirs_listed) == 60
    assert all(pages), "every search found its patient"
    rows = [row for page in pages for row in page] + list(appointments)
    assert len(appointments) == 60
    assert {row.tenant_id for row in rows} == {mine.tenant_id}
    assert {row.tenant_id for row in theirs_listed} == {theirs.tenant_id}


async def test_a_hot_read_outside_a_practice_is_refused(db: FastAPI) -> None:
    """A read on the driver without a tenant would see no rows through RLS; it is refused as
    the programming error it is rather than answered empty."""
    async with db.state.database.sessionmaker() as session:
        with pytest.raises(TenantScopeViolation):
            await PatientRepository(session).page(PatientFilters(), 10, None)


async def test_savepoints_keep_the_tenant_without_setting_it_again(
    two_tenants: TwoTenants, db: FastAPI
) -> None:
    """A savepoint inherits the transaction's tenant, also after one rolls back; the setting is
    sent once per transaction, not once more per savepoint (a round trip per booking)."""
    with statements_sent(db) as sent:
        async with db.state.database.sessionmaker() as session:
            await set_session_tenant(session, two_tenants.a)
            await session.connection()
            with pytest.raises(RuntimeError):
                async with session.begin_nested():
                    raise RuntimeError("rolled back")
            async with session.begin_nested():
                setting = await session.scalar(text("SELECT current_setting('app.tenant_id')"))
                seen = (await session.execute(text("SELECT tenant_id FROM memberships"))).scalars()
                assert setting == str(two_tenants.a)
                assert set(seen) == {two_tenants.a}
            await session.rollback()
    assert sum("set_config" in statement for statement in sent) == 1


async def test_naming_the_same_tenant_again_sends_nothing_but_a_rolled_back_switch_is_redone(
    two_tenants: TwoTenants, db: FastAPI
) -> None:
    """Entering the practice the transaction is already in costs no round trip; a switch that
    a rolled-back savepoint undid in the database is sent again, so RLS and the application's
    filter never name different practices."""

    async def practices_seen(session: AsyncSession) -> set[uuid.UUID]:
        setting = await session.scalar(text("SELECT current_setting('app.tenant_id')"))
        rows = set((await session.execute(text("SELECT tenant_id FROM memberships"))).scalars())
        assert {str(tenant) for tenant in rows} <= {setting}
        return rows

    with statements_sent(db) as sent:
        async with db.state.database.sessionmaker() as session:
            await set_session_tenant(session, two_tenants.a)
            await session.connection()
            await set_session_tenant(session, two_tenants.a)
            async with tenant_context(session, two_tenants.a):
                assert await practices_seen(session) == {two_tenants.a}
            assert sum("set_config" in statement for statement in sent) == 1
            savepoint = await session.begin_nested()
            await set_session_tenant(session, two_tenants.b)
            await savepoint.rollback()  # and the setting with it; the session still says b
            await set_session_tenant(session, two_tenants.b)
            assert await practices_seen(session) == {two_tenants.b}
            await session.rollback()
    assert sum("set_config" in statement for statement in sent) == 3

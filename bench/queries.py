"""The hot queries exactly as the app sends them, captured from its own repositories.

Each repository method runs once in a session scoped to a tenant (so the app's tenant filter is
added as in a request); the SQL and the bound values the driver receives are recorded: from
SQLAlchemy's `before_cursor_execute` for what it executes, and from asyncpg's own `fetch` and
`execute` for the hot reads (`clinicflow.core.hotread`), which run on the driver. The baselines
and EXPLAIN then run that text, so a change to a repository in the app is measured here without
editing the bench.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.repository import AppointmentFilters, AppointmentRepository
from clinicflow.core.database import Database
from clinicflow.core.tenancy import TENANT_KEY
from clinicflow.patients.repository import PatientFilters, PatientRepository
from clinicflow.tenants.repository import TenantRepository


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str  # asyncpg form: $1, $2, ...
    args: tuple[Any, ...]
    # What the app ran before it in the same transaction (a SET LOCAL, the practice's
    # calendar before its busy times): the baselines run it too, so they do the same work.
    before: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def statements(self) -> list[tuple[str, tuple[Any, ...]]]:
        """What runs before, then the query: one transaction of a baseline."""
        return [*self.before, (self.sql, self.args)]

    async def rows(self, connection: asyncpg.Connection, tenant: uuid.UUID) -> list[Any]:
        """One baseline transaction on `connection`: the tenant set, what runs before, then
        the query, whose rows are returned."""
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
            *before, (sql, args) = self.statements()
            for statement, arguments in before:
                await connection.fetch(statement, *arguments)
            return list(await connection.fetch(sql, *args))

    def bind(self, replacements: dict[Any, Any]) -> tuple[Any, ...]:
        """The arguments with captured values swapped (a tenant, a professional, a time)."""
        return tuple(replacements.get(arg, arg) for arg in self.args)

    def bound_statements(self, replacements: dict[Any, Any]) -> list[tuple[str, tuple[Any, ...]]]:
        """`statements()` with captured values swapped in each."""
        return [
            (sql, tuple(replacements.get(arg, arg) for arg in args))
            for sql, args in self.statements()
        ]

    def literal_args(self) -> list[str]:
        """The arguments as SQL literals (for `EXECUTE name(...)` and EXPLAIN by hand)."""

        def literal(arg: Any) -> str:
            if isinstance(arg, bool):
                return "true" if arg else "false"
            if isinstance(arg, int | float):
                return str(arg)
            if isinstance(arg, datetime):
                return f"'{arg.isoformat()}'::timestamptz"
            text = str(arg).replace("'", "''")
            return f"'{text}'"

        return [literal(arg) for arg in self.args]

    def literal(self) -> str:
        """The SQL with its arguments inlined."""
        values = self.literal_args()
        return re.sub(r"\$(\d+)(?![0-9])", lambda m: values[int(m.group(1)) - 1], self.sql)


_PLACEHOLDER = re.compile(r"%(s|%)")


def _numbered(statement: str) -> str:
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda m: f"${next(counter)}" if m.group(1) == "s" else "%", statement)


Statement = tuple[str, tuple[Any, ...]]


@contextmanager
def recording(database: Database) -> Iterator[list[Statement]]:
    """Every statement sent meanwhile, in asyncpg's $n form with its arguments: what
    SQLAlchemy executes (`before_cursor_execute`) and what goes through asyncpg's
    `Connection.fetch` and `execute` directly (the hot reads, `clinicflow.core.hotread`)."""
    seen: list[Statement] = []

    def record(
        conn: object, cursor: object, statement: str, parameters: Any, *rest: object
    ) -> None:
        seen.append((_numbered(statement), tuple(parameters or ())))

    fetch, execute = asyncpg.Connection.fetch, asyncpg.Connection.execute

    async def recorded_fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        seen.append((query, args))
        return await fetch(self, query, *args, **kwargs)

    async def recorded_execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        seen.append((query, args))
        return await execute(self, query, *args, **kwargs)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    asyncpg.Connection.fetch, asyncpg.Connection.execute = recorded_fetch, recorded_execute
    try:
        yield seen
    finally:
        asyncpg.Connection.fetch, asyncpg.Connection.execute = fetch, execute
        event.remove(engine, "before_cursor_execute", record)


# What a transaction sends of its own, which a baseline's transaction sends itself. A ROLLBACK
# among the captured statements (the dialect's first connect ends its probe with one) would end
# the baseline's transaction, and its tenant setting, before the query: no row would match.
_TRANSACTION_OWN = ("BEGIN", "COMMIT", "ROLLBACK", "SELECT set_config('app.tenant_id'")


async def capture(
    database: Database,
    tenant_id: uuid.UUID,
    name: str,
    work: Callable[[AsyncSession], Awaitable[object]],
    table: str,
    first: bool = False,
) -> Query:
    """The last (or the first) statement `work` sends that reads `table`, with the statements
    `work` sent before it (not the transaction's own: BEGIN, the tenant's set_config)."""
    with recording(database) as seen:
        async with database.sessionmaker() as session:
            session.info[TENANT_KEY] = tenant_id
            async with session.begin():
                await work(session)
    reading = [index for index, (sql, _) in enumerate(seen) if f"FROM {table}" in sql]
    index = reading[0] if first else reading[-1]
    before = tuple(
        (sql, args) for sql, args in seen[:index] if not sql.startswith(_TRANSACTION_OWN)
    )
    return Query(name, *seen[index], before=before)


@dataclass(frozen=True, slots=True)
class HotQueries:
    list_first: Query
    list_deep: Query
    search: Query
    search_rare: Query
    search_first_name: Query  # a common first name: every match sorts under one letter
    search_two_common: Query  # two common words
    agenda_week: Query
    availability: Query
    overlap: Query

    def reads(self) -> dict[str, Query]:
        return {
            "list": self.list_first,
            "list_deep": self.list_deep,
            "search": self.search,
            "search_rare": self.search_rare,
            "search_first": self.search_first_name,
            "search_two": self.search_two_common,
            "agenda": self.agenda_week,
            "availability": self.availability,
            "overlap": self.overlap,
        }


async def _availability(
    session: AsyncSession, tenant_id: uuid.UUID, professional: uuid.UUID, *window: datetime
) -> None:
    """What an availability request reads: the practice's calendar, the busy times."""
    await TenantRepository(session).calendar(tenant_id)
    await AppointmentRepository(session).busy_between(professional, *window)


async def hot_queries(
    database: Database,
    tenant_id: uuid.UUID,
    *,
    deep_cursor: tuple[str, uuid.UUID],
    common: str,
    rare: str,
    first_name: str,
    two_common: str,
    professional: uuid.UUID,
    week: datetime,
    slot: tuple[datetime, datetime],
) -> HotQueries:
    """The SQL of list (first and a deep keyset page), search, agenda, availability, overlap."""
    end = week + timedelta(days=7)
    async with database.engine.connect():
        pass  # the dialect's first-connect probe, before anything is recorded

    async def grab(
        name: str, table: str, work: Callable[[AsyncSession], Awaitable[Any]], first: bool = False
    ) -> Query:
        return await capture(database, tenant_id, name, work, table, first)

    return HotQueries(
        list_first=await grab(
            "list", "patients", lambda s: PatientRepository(s).page(PatientFilters(), 50, None)
        ),
        list_deep=await grab(
            "list_deep",
            "patients",
            lambda s: PatientRepository(s).page(PatientFilters(), 50, deep_cursor),
        ),
        search=await grab(
            "search",
            "patients",
            lambda s: PatientRepository(s).page(PatientFilters(q=common), 50, None),
        ),
        search_rare=await grab(
            "search_rare",
            "patients",
            lambda s: PatientRepository(s).page(PatientFilters(q=rare), 50, None),
        ),
        search_first_name=await grab(
            "search_first",
            "patients",
            lambda s: PatientRepository(s).page(PatientFilters(q=first_name), 50, None),
        ),
        search_two_common=await grab(
            "search_two",
            "patients",
            lambda s: PatientRepository(s).page(PatientFilters(q=two_common), 50, None),
        ),
        agenda_week=await grab(
            "agenda",
            "appointments",
            lambda s: AppointmentRepository(s).page(
                AppointmentFilters(start_from=week, start_to=end, professional_id=professional),
                100,
                None,
            ),
        ),
        availability=await grab(
            "availability",
            "appointments",
            lambda s: _availability(s, tenant_id, professional, week, end),
        ),
        overlap=await grab(
            "overlap",
            "appointments",
            lambda s: AppointmentRepository(s).first_overlap(professional, *slot),
        ),
    )

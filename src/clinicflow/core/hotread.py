"""Hot reads: a page the API only shows, run without the ORM's per-statement machinery.

A `HotRead` is a SELECT of columns built once per shape, its values bound at execution. On
PostgreSQL it is compiled once, with the tenant scope's filter (`tenancy.tenant_filtered`),
and run on the request session's own driver connection: the same transaction, begun with the
same `set_config` so Row-Level Security applies, with no statement compilation, execution
context or result objects on the way (they cost several times what the query does on a list
page). Elsewhere (SQLite, another driver) it is an ordinary ORM execution, scoped as every
other.

Rows come back as named tuples of the selected columns' keys (SQLAlchemy's own rows
elsewhere), through the columns' types' result processors (UTC timestamps, enums), so a
caller reads `row.full_name` either way.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.tenancy import (
    CUSTOM_PLANS_KEY,
    CUSTOM_PLANS_OPTION,
    CUSTOM_PLANS_SQL,
    tenant_filtered,
    tenant_values,
)

Processor = Callable[[Any], Any] | None
_REQUIRED = object()
AnySelect = Select[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    sql: str
    # In the order of the SQL's $n: the name, the value the statement itself binds (a
    # literal; _REQUIRED for a value the caller must give), and the type's conversion.
    parameters: tuple[tuple[str, Any, Processor], ...]
    make_row: Callable[[list[Any]], Any]
    # The result columns whose values the column's type converts: (position, conversion).
    conversions: tuple[tuple[int, Callable[[Any], Any]], ...]

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for name, default, process in self.parameters:
            value = values[name] if default is _REQUIRED else values.get(name, default)
            arguments.append(value if process is None or value is None else process(value))
        return arguments

    def row(self, record: Any) -> Any:
        if not self.conversions:
            return self.make_row(record)
        values = list(record)
        for index, convert in self.conversions:
            values[index] = convert(values[index])
        return self.make_row(values)


def _compile(statement: AnySelect, dialect: Dialect) -> _DriverStatement:
    compiled = tenant_filtered(statement).compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string:
        # Expanding or literal-execute parameters are rendered at execution by SQLAlchemy.
        raise ValueError("A hot read cannot carry expanding or literal-execute parameters")
    parameters = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        default = _REQUIRED if bind.required else bind.effective_value
        parameters.append((name, default, process))
    columns = list(statement.selected_columns)
    conversions = []
    for index, column in enumerate(columns):
        try:
            convert = column.type.dialect_impl(dialect).result_processor(dialect, None)
        except TypeError as error:  # a type whose conversion needs the driver's type code
            raise ValueError(f"A hot read cannot convert column {column.key!r}") from error
        if convert is not None:
            conversions.append((index, convert))
    row_type = namedtuple("HotRow", [column.key for column in columns])  # type: ignore[misc]
    return _DriverStatement(compiled.string, tuple(parameters), row_type._make, tuple(conversions))


class HotRead:
    """One read's statement (columns only, values as `bindparam`s), compiled on first use.

    `plan_each_time`: PostgreSQL plans it for the values of each execution, for a statement
    whose best plan depends on them (a common search word against a rare one): the driver
    prepares each statement once per connection, and from a prepared statement's sixth
    execution PostgreSQL may settle on a generic plan, made for no value in particular. The
    setting lasts until the transaction ends; sent with its BEGIN when the read begins it."""

    def __init__(self, statement: AnySelect, *, plan_each_time: bool = False) -> None:
        self.statement = statement
        self.plan_each_time = plan_each_time
        self._driver: _DriverStatement | None = None

    async def rows(self, session: AsyncSession, values: Mapping[str, Any]) -> list[Any]:
        bind = session.get_bind()
        if bind.dialect.driver != "asyncpg":
            return list(await session.execute(self.statement, dict(values)))
        # What the ORM does before a query: the read sees the session's own pending writes.
        if session.autoflush and (session.new or session.dirty or session.deleted):
            await session.flush()
        if self._driver is None:
            self._driver = _compile(self.statement, bind.dialect)
        driver = self._driver
        arguments = driver.arguments({**values, **tenant_values(session)})
        # Begins the session's transaction if it has not (and with it set_config). The
        # connection is checked out by then: its driver's is read without another greenlet hop.
        options = {CUSTOM_PLANS_OPTION: True} if self.plan_each_time else None
        if options and session.in_transaction():
            options = None  # given to a begun transaction, options are ignored with a warning
        checked_out: Any = (await session.connection(execution_options=options)).sync_connection
        connection = checked_out.connection.driver_connection
        if self.plan_each_time and not session.info.get(CUSTOM_PLANS_KEY):
            await connection.execute(CUSTOM_PLANS_SQL)
            session.info[CUSTOM_PLANS_KEY] = True
        records = await connection.fetch(driver.sql, *arguments)
        return [driver.row(record) for record in records]

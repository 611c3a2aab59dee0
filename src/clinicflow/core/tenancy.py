"""The one place where tenant scope is applied (SPEC §2, layers 2 and 3).

A session carries its tenant in `session.info`. From there:
- every ORM SELECT/UPDATE/DELETE gets `tenant_id = :tenant` on each TenantOwned entity
  (no tenant: nothing matches), through `do_orm_execute`;
- every new TenantOwned row is stamped with the tenant, and a row of another tenant is refused,
  through `before_flush`;
- on PostgreSQL each transaction begins with `set_config('app.tenant_id', tid, true)`, sent
  with the BEGIN itself (`TenantConnection`), so Row-Level Security sees the same tenant and
  nothing survives the transaction;
- a hot read compiled once (`core.hotread`) carries the same filter with the tenant left as
  the parameter TENANT_PARAMETER (`tenant_filtered`), which `tenant_values` fills.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Select, Uuid, bindparam, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, with_loader_criteria
from sqlalchemy.util import await_

from clinicflow.core.models import TenantOwned

TENANT_KEY = "tenant_id"
# What the open transaction's setting holds, when known: a call naming the same tenant again
# (a service entering the practice it is already in) then costs no round trip.
_APPLIED_KEY = "tenant_id_applied"
# Execution option for the rare query that must see every tenant's rows on the embedded
# database (PostgreSQL answers those through a SECURITY DEFINER function instead).
ALL_TENANTS_OPTION = "all_tenants"
_UNKNOWN = object()
_SET_TENANT_SQL = text("SELECT set_config('app.tenant_id', :tenant_id, true)")
# Execution option of `session.connection()` for a transaction whose statements PostgreSQL
# plans for each execution's values (`core.hotread`); CUSTOM_PLANS_KEY in `session.info`
# then says whether its BEGIN carried the setting.
CUSTOM_PLANS_OPTION = "custom_plans"
CUSTOM_PLANS_KEY = "custom_plans_applied"
CUSTOM_PLANS_SQL = "SET LOCAL plan_cache_mode = force_custom_plan"
TENANT_PARAMETER = "scope_tenant_id"


class TenantScopeViolation(RuntimeError):
    """A programming error: a write for a tenant other than the session's."""


def current_tenant(session: Session | AsyncSession) -> uuid.UUID | None:
    tenant: uuid.UUID | None = session.info.get(TENANT_KEY)
    return tenant


async def set_session_tenant(session: AsyncSession, tenant_id: uuid.UUID | None) -> None:
    """Bind the session to a tenant; applies to the transaction already open, if any.
    Pending rows are flushed first, so they are checked against the tenant they were written in."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    session.info[TENANT_KEY] = tenant_id
    if not session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return  # the transaction's begin sets it (`_set_tenant_on_begin`)
    if session.info.get(_APPLIED_KEY, _UNKNOWN) == tenant_id:
        return
    await session.execute(_SET_TENANT_SQL, {"tenant_id": str(tenant_id) if tenant_id else ""})
    session.info[_APPLIED_KEY] = tenant_id


def apply_tenant_scope(state: ORMExecuteState) -> None:
    """Add the tenant filter to an ORM statement. Two distinct lambdas, never one that branches
    on its closure: SQLAlchemy caches a lambda's SQL shape and only re-binds its values."""
    tenant_id = state.session.info.get(TENANT_KEY)
    if tenant_id is None:
        criteria = with_loader_criteria(
            TenantOwned, lambda cls: cls.tenant_id.is_(None), include_aliases=True
        )
    else:
        criteria = with_loader_criteria(
            TenantOwned, lambda cls: cls.tenant_id == tenant_id, include_aliases=True
        )
    state.statement = state.statement.options(criteria)


def tenant_filtered(statement: Select[Any]) -> Select[Any]:
    """`statement` filtered as `apply_tenant_scope` filters an ORM statement, every TenantOwned
    entity in it included, with the tenant as the bound parameter TENANT_PARAMETER: for a
    statement compiled once and run on the driver (`core.hotread`)."""
    # The name written out: SQLAlchemy's lambda analysis wraps a global the lambda reads.
    criteria = with_loader_criteria(
        TenantOwned,
        lambda cls: cls.tenant_id == bindparam("scope_tenant_id", type_=Uuid()),
        include_aliases=True,
    )
    return statement.options(criteria)


def tenant_values(session: Session | AsyncSession) -> dict[str, uuid.UUID]:
    """The value of TENANT_PARAMETER for a statement run in `session`."""
    tenant_id = current_tenant(session)
    if tenant_id is None:
        raise TenantScopeViolation("A tenant's hot read in a session scoped to no tenant")
    return {TENANT_PARAMETER: tenant_id}


class TenantConnection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's connection (the engine's `connection_class`), whose next BEGIN can carry the
    transaction's own settings: `BEGIN; SELECT set_config(...)` goes as one simple query, one
    round trip where two were (a tenth of a short read's time in the app, and as much of the
    server's).

    The settings are armed only for the duration of `_begin_in_tenant`'s own BEGIN and
    disarmed whatever happens, so no other transaction on this pooled connection can inherit
    them; each is transaction-local (`set_config(..., true)`, `SET LOCAL`)."""

    _settings_at_begin: str | None = None

    # asyncpg's own signature, timeout included.
    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        settings, self._settings_at_begin = self._settings_at_begin, None
        if settings is not None and not args and query.startswith("BEGIN"):
            query = f"{query.rstrip(';')}; {settings}"
        status: str = await super().execute(query, *args, timeout=timeout)
        return status


def _begin_in_tenant(connection: Connection, tenant_id: uuid.UUID, custom_plans: bool) -> bool:
    """Begin the transaction now, its tenant set (and its plans made for each execution, if
    asked) in the same round trip. False where that cannot be done (another driver, a
    transaction already begun, autocommit): the caller sets the tenant apart. A BEGIN that
    fails or is cancelled discards the connection and raises.

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, before its first statement; its
    `_start_transaction` (private, hence the checks) sends it now, through asyncpg's own
    transaction, so commit, rollback and the pool's reset treat it as their own."""
    pooled = connection.connection
    driver, adapter = pooled.driver_connection, pooled.dbapi_connection
    start = getattr(adapter, "_start_transaction", None)
    if not isinstance(driver, TenantConnection) or start is None or driver.is_in_transaction():
        return False
    # A UUID's text is hex digits and dashes: nothing in it can leave the SQL literal.
    settings = f"SELECT set_config('app.tenant_id', '{uuid.UUID(str(tenant_id))}', true);"
    driver._settings_at_begin = f"{settings} {CUSTOM_PLANS_SQL};" if custom_plans else settings
    try:
        await_(start())
    except BaseException as error:
        # asyncpg counts its transaction as open from before the BEGIN is answered, and still
        # does when the BEGIN fails or is cancelled; SQLAlchemy's adapter does not. Pooled
        # again, such a connection could sit in a transaction with this tenant set, where
        # each later BEGIN would be a savepoint and each commit a mere release: discarded.
        connection.invalidate()
        base = connection.dialect.loaded_dbapi.Error
        if isinstance(error, base):  # as SQLAlchemy reports a lost connection (a 503)
            raise DBAPIError.instance(
                None, None, error, base, connection_invalidated=True, dialect=connection.dialect
            ) from error
        raise
    finally:
        driver._settings_at_begin = None
    # An autocommit connection begins nothing and sent nothing: the caller sets it apart.
    return bool(driver.is_in_transaction())


@event.listens_for(Session, "after_begin")
def _set_tenant_on_begin(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    # A savepoint runs inside a transaction whose setting already names the session's tenant
    # (set when it began, or by `set_session_tenant` since): setting it again costs a round trip.
    if transaction.nested:
        return
    tenant_id = session.info.get(TENANT_KEY)
    if connection.dialect.name != "postgresql":
        return
    custom_plans = bool(connection.get_execution_options().get(CUSTOM_PLANS_OPTION, False))
    if tenant_id is not None and _begin_in_tenant(connection, tenant_id, custom_plans):
        session.info[CUSTOM_PLANS_KEY] = custom_plans
    elif tenant_id is not None:
        connection.execute(_SET_TENANT_SQL, {"tenant_id": str(tenant_id)})
    # Unset otherwise: the setting is transaction-local and never set for the session.
    session.info[_APPLIED_KEY] = tenant_id


@event.listens_for(Session, "after_transaction_end")
def _forget_applied_tenant(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint rolled back undoes a setting made inside it; an ended transaction takes its
    # setting along. Either way the next `set_session_tenant` sends it again. (A flush's
    # internal subtransaction, neither nested nor the root, changes nothing.)
    if transaction.nested or transaction.parent is None:
        session.info.pop(_APPLIED_KEY, None)
        session.info.pop(CUSTOM_PLANS_KEY, None)


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statements(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get(ALL_TENANTS_OPTION, False):
        return
    apply_tenant_scope(state)


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, flush_context: object, instances: object) -> None:
    tenant_id = session.info.get(TENANT_KEY)
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantOwned):
            continue
        if obj.tenant_id is None and tenant_id is not None:
            obj.tenant_id = tenant_id
        if tenant_id is None or obj.tenant_id != tenant_id:
            raise TenantScopeViolation(
                f"{type(obj).__name__} for tenant {obj.tenant_id} written in a session "
                f"scoped to {tenant_id}"
            )


@asynccontextmanager
async def tenant_context(session: AsyncSession, tenant_id: uuid.UUID | None) -> AsyncIterator[None]:
    """Act inside one tenant for a while (platform operations, seeding), then restore."""
    previous = current_tenant(session)
    await set_session_tenant(session, tenant_id)
    try:
        yield
    finally:
        await set_session_tenant(session, previous)

"""Engine and the one request-scoped session: commit once on success, roll back on error.

Messages to send are rows of the outbox written in this same transaction (see
`clinicflow.notifications.outbox`), so a rolled-back request sends nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import orjson
import structlog
from fastapi import BackgroundTasks, Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from starlette.background import BackgroundTask

from clinicflow.core.errors import ClinicFlowError
from clinicflow.core.input_guard import StrictJSONRequest
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import (  # also registers the scope's events
    TenantConnection,
    set_session_tenant,
)


@dataclass(frozen=True, slots=True)
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        await self.engine.dispose()


# Execution option asking SQLite for its write lock when the transaction begins.
SQLITE_WRITE_LOCK = "sqlite_begin_immediate"


def _configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
    # The driver's own BEGIN handling comes late and breaks SAVEPOINT; we emit BEGIN ourselves.
    dbapi_connection.isolation_level = None


def _begin_sqlite(connection: Connection) -> None:
    """SQLite has no exclusion constraint: a transaction that checks and then writes (a booking,
    a plan limit) must hold the write lock before it checks, or two processes both see a free
    slot. `BEGIN IMMEDIATE` takes it up front; other writers wait (busy_timeout)."""
    immediate = connection.get_execution_options().get(SQLITE_WRITE_LOCK, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(
    url: str, *, pool_size: int = 10, pool_timeout: float = 10, pre_ping: bool = False
) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_sqlite)
        return engine
    # Behind PgBouncer's transaction pooling SQLAlchemy's statement cache is turned off in the
    # URL (docs/SCALING.md); asyncpg's own, which the hot reads use (`core.hotread`), goes too.
    connect_args: dict[str, Any] = {"connection_class": TenantConnection}
    if parsed.query.get("prepared_statement_cache_size") == "0":
        connect_args["statement_cache_size"] = 0
    # hide_parameters: SQL parameters (clinical notes, password hashes) never reach an error log.
    # Without pre-ping a connection the server dropped fails one request (and is discarded);
    # pool_recycle retires connections before a typical idle timeout closes them.
    # No overflow: a connection past the pool's was closed as soon as it was returned, so under
    # a burst every request paid a new connection (TCP, authentication, the dialect's set-up
    # queries) just when the server was busiest (bench: p99 up to 1.5x). A request beyond the
    # pool waits for a connection instead, as asyncpg's own pool does.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        hide_parameters=True,
        json_deserializer=orjson.loads,
        connect_args=connect_args,
    )


# Every session carries what audit appends need: the chain key (never stored in the database)
# and where signed chain heads are exported.
AUDIT_KEY_INFO = "audit_hmac_key"
AUDIT_HEAD_FILE_INFO = "audit_head_file"


def create_database(settings: Settings, *, url: str | None = None) -> Database:
    engine = create_engine(
        url or settings.database_url,
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout_seconds,
        pre_ping=settings.database_pool_pre_ping,
    )
    info = {
        AUDIT_KEY_INFO: settings.audit_hmac_key.get_secret_value().encode(),
        AUDIT_HEAD_FILE_INFO: settings.audit_head_file,
    }
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False, info=info))


AFTER_COMMIT_KEY = "after_commit"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AfterCommit = Callable[[], Awaitable[None]]
Bookkeeping = Callable[[AsyncSession], Awaitable[None]]
logger = structlog.get_logger("clinicflow.database")


def run_after_commit(session: AsyncSession, work: AfterCommit) -> None:
    """Schedule work (e.g. sending an e-mail) for after the request's commit and response;
    dropped if the transaction rolls back."""
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(work)


async def _keep_books(engine: AsyncEngine, tenant_id: uuid.UUID | None, write: Bookkeeping) -> None:
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            await claim_write_lock(session)
            await set_session_tenant(session, tenant_id)
            await write(session)
            await session.commit()
    except SQLAlchemyError as error:  # bookkeeping only: the request has been answered
        logger.warning("bookkeeping_failed", error=type(error).__name__)


def keep_books_after_commit(
    session: AsyncSession, tenant_id: uuid.UUID | None, write: Bookkeeping
) -> None:
    """A write a read causes (a last-used time), done in its own short transaction once the
    request has committed: a read stays a read (on SQLite a write inside a read transaction
    cannot wait for the lock, and failed the request with 500), and a failure costs only the
    bookkeeping."""
    engine = session.bind
    assert isinstance(engine, AsyncEngine)
    # A partial of a coroutine function, which background tasks await (a lambda they would not).
    run_after_commit(session, partial(_keep_books, engine, tenant_id, write))


async def claim_write_lock(session: AsyncSession) -> None:
    """Begin the session's transaction holding the database's write lock where that is how
    writers are serialised (SQLite); PostgreSQL relies on row locks and constraints instead.
    Call it before the session's first statement: the lock is taken as the transaction begins."""
    session.info[_WRITES_KEY] = True  # `released` claims it again for the next transaction
    if session.get_bind().dialect.name == "sqlite":
        await session.connection(execution_options={SQLITE_WRITE_LOCK: True})


# Set by `claim_write_lock`: the session's transactions are a writer's.
_WRITES_KEY = "claims_write_lock"
# Set when the open transaction has written through the ORM (flush, ORM UPDATE/DELETE/INSERT).
_WROTE_KEY = "transaction_wrote"


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, flush_context: object) -> None:
    session.info[_WROTE_KEY] = True


@event.listens_for(Session, "do_orm_execute")
def _note_orm_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE_KEY] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_writes(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the root transaction: its writes are settled either way
        session.info.pop(_WROTE_KEY, None)


@asynccontextmanager
async def released(session: AsyncSession) -> AsyncIterator[None]:
    """Wait on something outside the database (another service over HTTP) holding no
    transaction: the one open so far is ended, which gives back its pooled connection
    (PostgreSQL) and SQLite's write lock, both of which other requests wait for; a slow
    partner then delays only the request that called it. Afterwards the session begins a new
    transaction as its first began: a writer's claims the write lock again (here, before
    the body goes on), and `after_begin` sets the tenant again (core/tenancy).

    Only between reads. The transaction so far must not have written anything (refused with
    RuntimeError: ending it would either lose the writes or commit them apart), so the request
    still commits once, all it writes, at its end. What was read before may have changed by
    the time the session goes on, like anything a request reads before another commits (the
    caller was authorised as of the request's start, as on PostgreSQL's READ COMMITTED): read
    again what a write depends on. ORM objects loaded before are expired (the transaction
    rolled back): keep plain values across, not objects.
    """
    if session.new or session.dirty or session.deleted or session.info.get(_WROTE_KEY):
        raise RuntimeError("released() after a write: the transaction holds changes")
    if session.in_transaction():
        await session.rollback()  # nothing to keep: a read transaction just ends
    yield
    if session.info.get(_WRITES_KEY) and not session.in_transaction():
        await claim_write_lock(session)


@asynccontextmanager
async def unit_of_work(
    database: Database, schedule: Callable[[AfterCommit], None], *, writes: bool
) -> AsyncIterator[AsyncSession]:
    """One session, one transaction: commit once on success (or on an error that asks for it),
    roll back otherwise; after-commit work is handed to `schedule`. Used by every request
    and by every /mcp tool call."""
    async with database.sessionmaker() as session:
        if writes:
            await claim_write_lock(session)
        try:
            yield session
        except ClinicFlowError as error:
            if error.commit_changes:
                await _commit(session, schedule)
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await _commit(session, schedule)


@asynccontextmanager
async def committed(database: Database) -> AsyncIterator[AsyncSession]:
    """A writer's unit of work outside a request (the command line, start-up): when the block
    ends, what its commit scheduled has run, the export of the audit chains' new heads among
    it. A bare `sessionmaker()` session drops that work: its audit events would have no
    exported head, and a deleted tail of them would go unnoticed by `audit verify`."""
    after_commit: list[AfterCommit] = []
    try:
        async with unit_of_work(database, after_commit.append, writes=True) as session:
            yield session
    finally:
        await _run_now(after_commit)


async def _commit(session: AsyncSession, schedule: Callable[[AfterCommit], None]) -> None:
    await session.commit()
    for work in session.info.pop(AFTER_COMMIT_KEY, []):
        schedule(work)


_SESSION_KEY = "clinicflow.session"


class UnitOfWorkRoute(APIRoute):
    """A route whose request runs in one unit of work: the session opens before the route's
    dependencies are solved and commits once its response is built, before it is sent, so a
    failed commit is an error response, never a success the database did not keep. Work
    scheduled for after the commit runs as the response's background tasks. Every API
    router is made with it (`APIRouter(route_class=UnitOfWorkRoute)`): a route class rather
    than a generator dependency, whose machinery in FastAPI cost ~0.1 ms of every request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            after_commit: list[AfterCommit] = []
            database = request.app.state.database
            try:
                # A write's lock (SQLite) is claimed by `_request_session`, not here.
                async with unit_of_work(database, after_commit.append, writes=False) as session:
                    request.scope[_SESSION_KEY] = session
                    response = await handler(StrictJSONRequest(request.scope, request.receive))
            except Exception:
                # An error that keeps its changes (a failed login's count, a revoked token
                # family) committed them: what that commit scheduled (the export of the audit
                # chain's new head) runs now, there being no response of ours to carry it.
                await _run_now(after_commit)
                raise
            if after_commit:
                response.background = _then(response.background, after_commit)
            return response

        return handle


def _then(background: BackgroundTask | None, after_commit: list[AfterCommit]) -> BackgroundTasks:
    """The response's own background work, then what the commit scheduled."""
    tasks = BackgroundTasks([background] if background is not None else [])
    for work in after_commit:
        tasks.add_task(work)
    return tasks


async def _run_now(after_commit: list[AfterCommit]) -> None:
    for work in after_commit:
        try:
            await work()
        except Exception:  # the request's own error is what its client gets
            logger.exception("after_commit_failed")


async def _request_session(request: Request) -> AsyncSession:
    """The request's session; a write's begins holding the database's write lock (SQLite).
    Claimed when a dependency first asks for the session, not when the route starts: by then
    the body has arrived and the router's rate limit is charged, and neither a slow upload nor
    a refused request may hold the one lock every writer waits for."""
    session = request.scope.get(_SESSION_KEY)
    if not isinstance(session, AsyncSession):
        raise RuntimeError(f"{request.url.path}: a route taking SessionDep is a UnitOfWorkRoute")
    if request.method not in _READ_METHODS and not session.in_transaction():
        await claim_write_lock(session)
    return session


SessionDep = Annotated[AsyncSession, Depends(_request_session)]

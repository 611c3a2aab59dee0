"""What SQL the app sends: for tests that count round trips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event


@contextmanager
def statements_sent(db: FastAPI) -> Iterator[list[str]]:
    """The SQL the app's engine sends through its cursors while the block runs and, on
    asyncpg, what the driver runs outside them: BEGIN (with the settings it carries), COMMIT,
    ROLLBACK, hot reads. The driver reports its own a moment later, so not in order."""
    engine = db.state.database.engine.sync_engine
    sent: list[str] = []
    watched: list[Any] = []

    def record(*args: object) -> None:
        statement = args[2]
        assert isinstance(statement, str)
        sent.append(statement)

    def log(query: Any) -> None:
        sent.append(query.query)

    def watch(dbapi_connection: object, connection_record: object, pooled: Any) -> None:
        driver = pooled.driver_connection
        if hasattr(driver, "add_query_logger") and driver not in watched:
            driver.add_query_logger(log)
            watched.append(driver)

    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "checkout", watch)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "checkout", watch)
        for driver in watched:
            driver.remove_query_logger(log)

"""What SQL the app sends: for tests that count round trips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from sqlalchemy import event


@contextmanager
def statements_sent(db: FastAPI) -> Iterator[list[str]]:
    """The SQL the app's engine sends while the block runs."""
    engine = db.state.database.engine.sync_engine
    sent: list[str] = []

    def record(*args: object) -> None:
        statement = args[2]
        assert isinstance(statement, str)
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)

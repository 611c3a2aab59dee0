"""Cursor pagination shared by every list: `limit` (1-200, default 50) and an opaque `cursor`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from clinicflow.core.errors import BadRequest

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_MALFORMED = "The cursor is malformed; use next_cursor from a previous page."


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int
    cursor: list[Any] | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


def cursor_fields(
    cursor: list[Any] | None, *parsers: Callable[[str], Any]
) -> tuple[Any, ...] | None:
    """A decoded cursor's values through their parsers (e.g. uuid.UUID); 400 if they don't fit."""
    if not cursor:
        return None
    try:
        return tuple(parse(str(value)) for parse, value in zip(parsers, cursor, strict=True))
    except (ValueError, TypeError) as error:
        raise BadRequest(_MALFORMED) from error


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(_MALFORMED) from error
    if not isinstance(values, list):
        raise BadRequest(_MALFORMED)
    return values

"""Input types shared by every schema, so each rule is written once."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar
from zoneinfo import available_timezones

from annotated_types import MaxLen
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.fields import FieldInfo

# Years 1900-2199 as written; a day's margin either side so that any offset (±14 h) on a date
# inside those years is accepted once converted to UTC.
EARLIEST = datetime(1899, 12, 31, tzinfo=UTC)
LATEST = datetime(2200, 1, 2, tzinfo=UTC)
INSTANT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "pattern": "^(19[0-9]{2}|2[01][0-9]{2})-",
    "description": "ISO 8601 with an offset (e.g. 2026-03-09T14:00:00-03:00), years 1900-2199.",
}


def utc_in_range(value: datetime) -> datetime:
    """Stored in UTC: an offset that pushes a date past the calendar (9999-12-31T23:59-14:00)
    would overflow there, and no practice books in 1800 or 2300."""
    try:
        instant = value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("the date is out of range") from error
    if not EARLIEST <= instant < LATEST:
        raise ValueError("must be in the years 1900 to 2199")
    return instant


_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?")


def iso_text(value: object) -> object:
    """Dates and instants are ISO 8601 text; a number (or a numeric string), which pydantic
    would read as a Unix timestamp, is refused like any other wrong type."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be ISO 8601 text, e.g. 2026-03-09 or 2026-03-09T14:00:00-03:00")
    return value


# An instant sent with its offset (a naive time is refused), answered back in UTC.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(iso_text),
    AfterValidator(utc_in_range),
    WithJsonSchema(INSTANT_SCHEMA),
]
# A calendar day, YYYY-MM-DD.
Day = Annotated[date, BeforeValidator(iso_text)]

# The IANA names this Python knows, less the system's "localtime" link and tzdata's "Factory"
# placeholder. ZoneInfo(name) alone also opens "posixrules" or "right/UTC", and for "America"
# (a folder) or a 300-character name fails with an OSError.
KNOWN_ZONES = frozenset(available_timezones() - {"localtime", "Factory"})


def known_zone(name: str) -> str:
    if name not in KNOWN_ZONES:
        raise ValueError(f"unknown time zone {name[:60]!r}")
    return name


TimeZoneName = Annotated[
    str,
    AfterValidator(known_zone),
    WithJsonSchema({"type": "string", "enum": sorted(KNOWN_ZONES), "description": "IANA name."}),
]


# For models that strip surrounding whitespace before checking lengths: a minLength counts
# what is left, so the schema says so with a pattern (edges that are not blank, and no control
# character but tab, line feed and carriage return anywhere).
_BLANK = r"[^\S\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_EDGE = r"[^\s\x00-\x1f\x7f]"
_TEXT = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def stripped_lengths(schema: dict[str, Any], model: type[BaseModel]) -> None:
    for field in schema.get("properties", {}).values():
        for option in field.get("anyOf", [field]):
            least = option.get("minLength", 0)
            if option.get("type") == "string" and least >= 1 and "pattern" not in option:
                middle = f"({_TEXT}*{_EDGE})?" if least == 1 else f"{_TEXT}{{{least - 2},}}{_EDGE}"
                option["pattern"] = f"^{_BLANK}*{_EDGE}{middle}{_BLANK}*$"


def null_only_where_clearable(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The schema says what the validator does: `null` only for clearable fields."""
    clearable: frozenset[str] = getattr(model, "clearable", frozenset())
    for name, field in schema.get("properties", {}).items():
        options = field.get("anyOf")
        if name in clearable or not options or {"type": "null"} not in options:
            continue
        rest = [option for option in options if option != {"type": "null"}]
        field.pop("anyOf")
        field.pop("default", None)
        if len(rest) == 1:
            field.update(rest[0])
        else:
            field["anyOf"] = rest


def input_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The one `json_schema_extra` of the input bases below: the schema states what their
    validators do, so a schema-valid body is never refused."""
    if issubclass(model, PatchBody):
        null_only_where_clearable(schema, model)
    if model.model_config.get("str_strip_whitespace"):
        stripped_lengths(schema, model)


def _max_length(field: FieldInfo) -> int | None:
    return next((rule.max_length for rule in field.metadata if isinstance(rule, MaxLen)), None)


class StrippedInput(BaseModel):
    """A body whose text is stored without surrounding whitespace. A minLength counts what is
    left after stripping (the schema's pattern says so); a maxLength counts what was sent, as
    JSON Schema does, so a value over it is a 422 even when stripping would shorten it."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=input_schema
    )

    @field_validator("*", mode="before")
    @classmethod
    def _max_length_as_sent(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and info.field_name is not None:
            limit = _max_length(cls.model_fields[info.field_name])
            if limit is not None and len(value) > limit:
                raise ValueError(f"must be at most {limit} characters as sent")
        return value


class PatchBody(BaseModel):
    """A partial update: a field left out keeps its value, and `null` clears it only where an
    empty value makes sense (`clearable`). Elsewhere a null is a 422 naming the field, instead of
    a NOT NULL violation, or a stored null that breaks every later request."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=input_schema)
    clearable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_clearable(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name not in cls.clearable:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value

"""Per-practice custom patient fields: definitions (in tenant settings) and validation."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from clinicflow.core.errors import ValidationFailed

SETTINGS_KEY = "custom_patient_fields"
MAX_TEXT = 2000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


class CustomFieldDefinition(BaseModel):
    # Choices only, and always, for a choice field: said in the schema too.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"type": {"const": "choice"}}},
            "then": {
                "required": ["choices"],
                "properties": {"choices": {"type": "array", "minItems": 1, "uniqueItems": True}},
            },
            "else": {"properties": {"choices": {"type": "null"}}},
        },
    )

    key: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="The key in a patient's custom_fields: lowercase letters, digits, _.",
        examples=["insurance"],
    )
    label: str = Field(
        min_length=1,
        max_length=100,
        description="What a form shows.",
        examples=["Health insurance"],
    )
    type: Literal["text", "number", "date", "boolean", "choice"] = Field(
        description="The value's type.", examples=["text"]
    )
    required: bool = Field(default=False, description="Every patient must have a value.")
    choices: list[str] | None = Field(
        default=None, description="The allowed values; only for type choice."
    )

    @model_validator(mode="after")
    def _choices_match_type(self) -> CustomFieldDefinition:
        if self.type == "choice":
            if not self.choices or len(set(self.choices)) != len(self.choices):
                raise ValueError("a choice field needs a non-empty list of distinct choices")
        elif self.choices is not None:
            raise ValueError("only choice fields take choices")
        return self


DEFINITIONS = TypeAdapter(list[CustomFieldDefinition])


def definitions_from(settings: dict[str, Any]) -> list[CustomFieldDefinition]:
    return DEFINITIONS.validate_python(settings.get(SETTINGS_KEY, []))


def _check(definition: CustomFieldDefinition, value: object) -> tuple[object, str | None]:
    """The stored form of a value, or why it is refused."""
    kind = definition.type
    if kind == "text":
        if not isinstance(value, str):
            return value, "must be text"
        return value, (f"must be at most {MAX_TEXT} characters" if len(value) > MAX_TEXT else None)
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return value, None if ok and _fits_a_double(value) else "must be a number"
    if kind == "boolean":
        return value, None if isinstance(value, bool) else "must be true or false"
    if kind == "date":
        # fromisoformat alone also takes 20260102; the contract is the extended form only.
        if isinstance(value, str) and _DATE.fullmatch(value):
            try:
                return date.fromisoformat(value).isoformat(), None
            except ValueError:
                pass
        return value, "must be a date (YYYY-MM-DD)"
    choices = definition.choices or []
    return value, None if value in choices else f"must be one of {choices}"


def _fits_a_double(value: object) -> bool:
    """What spreadsheets, JSON readers and exports can hold: 10**400 is an integer to Python
    but overflows every float (the XLSX export stopped in the middle)."""
    try:
        float(value)  # type: ignore[arg-type]
    except OverflowError:
        return False
    return True


def clean(definitions: list[CustomFieldDefinition], values: dict[str, Any]) -> dict[str, Any]:
    """Validate a complete set of custom values; every problem is reported at once."""
    by_key = {definition.key: definition for definition in definitions}
    errors = [
        {"field": f"custom_fields.{key}", "message": "is not a field of this practice",
         "type": "unknown_field"}
        for key in values if key not in by_key
    ]  # fmt: skip
    cleaned: dict[str, Any] = {}
    for key, definition in by_key.items():
        value = values.get(key)
        if value is None:
            if definition.required:
                errors.append({"field": f"custom_fields.{key}", "message": "is required",
                               "type": "missing"})  # fmt: skip
            continue
        stored, problem = _check(definition, value)
        if problem:
            errors.append({"field": f"custom_fields.{key}", "message": problem, "type": "invalid"})
        cleaned[key] = stored
    if errors:
        raise ValidationFailed("Custom fields are not valid for this practice.", errors=errors)
    return cleaned

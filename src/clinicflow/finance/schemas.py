"""Request and response bodies of /financial-entries (SPEC §6 field names)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from clinicflow.core.types import Day, Instant, PatchBody
from clinicflow.finance.models import EntryKind

# Exact decimals in and out: "150.00" as a JSON string, never a float.
Money = Annotated[Decimal, PlainSerializer(lambda value: f"{value:.2f}", return_type=str)]
# Sent as a string so no float ever touches money; the pattern is the same rule as the bounds:
# positive, at most 10 digits before the point and 2 after.
AMOUNT_PATTERN = r"^([1-9][0-9]{0,9}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"
Amount = Annotated[
    Decimal,
    Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN}),
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EntryKind = Field(
        description="income (money in) or expense (money out).",
        examples=["income"],
    )
    amount: Amount = Field(
        description="Positive decimal with at most 2 places, sent as a string.",
        examples=["150.00"],
    )
    currency: Currency = Field(
        default="BRL",
        description="ISO 4217 code (default BRL).",
        examples=["BRL"],
    )
    due_date: Day = Field(description="When it is due (YYYY-MM-DD).", examples=["2026-12-10"])
    paid_at: Instant | None = Field(
        default=None,
        description="When it was paid (ISO 8601 with offset); leave out while unpaid.",
        examples=["2026-12-10T10:30:00-03:00"],
    )
    method: str | None = Field(
        default=None,
        max_length=32,
        description="Payment method, free text.",
        examples=["pix"],
    )
    category: str | None = Field(
        default=None,
        max_length=64,
        description="Category for the summary, free text.",
        examples=["consultation"],
    )
    patient_id: uuid.UUID | None = Field(
        default=None,
        description="The patient it concerns, if any.",
    )
    appointment_id: uuid.UUID | None = Field(
        default=None,
        description="The appointment it pays for, if any.",
    )
    description: str | None = Field(
        default=None,
        max_length=2000,
        description="Free text.",
        examples=["Session of 1 December"],
    )


class EntryUpdate(PatchBody):
    clearable = frozenset({"category", "description", "method", "paid_at"})

    amount: Amount | None = Field(
        default=None,
        description="Positive decimal with at most 2 places, as a string.",
        examples=["180.00"],
    )
    due_date: Day | None = Field(
        default=None,
        description="When it is due (YYYY-MM-DD).",
        examples=["2026-12-15"],
    )
    paid_at: Instant | None = Field(
        default=None,
        description="When it was paid (ISO 8601 with offset); null marks it unpaid.",
        examples=["2026-12-15T09:00:00-03:00"],
    )
    method: str | None = Field(
        default=None,
        max_length=32,
        description="Payment method; null clears it.",
        examples=["card"],
    )
    category: str | None = Field(
        default=None,
        max_length=64,
        description="Category; null clears it.",
        examples=["consultation"],
    )
    description: str | None = Field(
        default=None,
        max_length=2000,
        description="Free text; null clears it.",
        examples=["Paid in full"],
    )


class EntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Entry id.")
    kind: EntryKind = Field(description="income or expense.")
    amount: Money = Field(description="Exact decimal as a string, 2 places.")
    currency: str = Field(description="ISO 4217 code.")
    due_date: Day = Field(description="When it is due.")
    paid_at: datetime | None = Field(description="When it was paid; null while unpaid.")
    method: str | None = Field(description="Payment method.")
    category: str | None = Field(description="Category.")
    patient_id: uuid.UUID | None = Field(description="The patient it concerns.")
    appointment_id: uuid.UUID | None = Field(description="The appointment it pays for.")
    description: str | None = Field(description="Free text.")
    created_at: datetime = Field(description="When it was recorded.")
    created_by: uuid.UUID | None = Field(default=None, description="The member who recorded it.")
    updated_by: uuid.UUID | None = Field(
        default=None,
        description="The member who last changed it.",
    )


class EntryList(BaseModel):
    items: list[EntryRead] = Field(description="This page's entries, by due date.")
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
    )


class CurrencySummary(BaseModel):
    currency: str = Field(description="ISO 4217 code these figures are in.")
    received: Money = Field(description="Income paid within the period.")
    outstanding: Money = Field(description="Income due within the period and not paid.")
    overdue: Money = Field(description="Outstanding income whose due date has passed.")
    expenses_paid: Money = Field(description="Expenses paid within the period.")
    received_by_method: dict[str, Money] = Field(description="Received income by payment method.")
    by_category: dict[str, Money] = Field(description="Amounts by category.")


class Summary(BaseModel):
    start: Day = Field(serialization_alias="from", description="First day of the period.")
    end: Day = Field(serialization_alias="to", description="Last day of the period (inclusive).")
    currencies: list[CurrencySummary] = Field(description="The figures, one item per currency.")

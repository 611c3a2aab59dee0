"""Request and response bodies of /financial-entries (SPEC §6 field names)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from clinicflow.core.types import Instant, PatchBody
from clinicflow.finance.models import EntryKind

# Exact decimals in and out: "150.00" as a JSON string, never a float.
Money = Annotated[Decimal, PlainSerializer(lambda value: f"{value:.2f}", return_type=str)]
Amount = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EntryKind
    amount: Amount
    currency: Currency = "BRL"
    due_date: date
    paid_at: Instant | None = None
    method: str | None = Field(default=None, max_length=32)
    category: str | None = Field(default=None, max_length=64)
    patient_id: uuid.UUID | None = None
    appointment_id: uuid.UUID | None = None
    description: str | None = Field(default=None, max_length=2000)


class EntryUpdate(PatchBody):
    clearable = frozenset({"category", "description", "method", "paid_at"})

    amount: Amount | None = None
    due_date: date | None = None
    paid_at: Instant | None = None
    method: str | None = Field(default=None, max_length=32)
    category: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=2000)


class EntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: EntryKind
    amount: Money
    currency: str
    due_date: date
    paid_at: datetime | None
    method: str | None
    category: str | None
    patient_id: uuid.UUID | None
    appointment_id: uuid.UUID | None
    description: str | None
    created_at: datetime
    created_by: uuid.UUID | None = None
    updated_by: uuid.UUID | None = None


class EntryList(BaseModel):
    items: list[EntryRead]
    next_cursor: str | None = None


class CurrencySummary(BaseModel):
    currency: str
    received: Money
    outstanding: Money
    overdue: Money
    expenses_paid: Money
    received_by_method: dict[str, Money]
    by_category: dict[str, Money]


class Summary(BaseModel):
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    currencies: list[CurrencySummary]

"""/financial-entries: income and expenses, and the period summary (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import NotFound
from clinicflow.core.openapi import problems
from clinicflow.core.pagination import PageParams, cursor_fields, encode_cursor, page_params
from clinicflow.core.types import Day
from clinicflow.finance.schemas import EntryCreate, EntryList, EntryRead, EntryUpdate, Summary
from clinicflow.finance.service import FinanceService

router = APIRouter(route_class=UnitOfWorkRoute, tags=["finance"])
Reader = Annotated[Principal, Depends(require(Permission.FINANCE_READ))]
Writer = Annotated[Principal, Depends(require(Permission.FINANCE_WRITE))]


def _service(principal: Principal, session: SessionDep) -> FinanceService:
    return FinanceService(session, principal.require_tenant(), principal.actor)


@router.post(
    "/financial-entries",
    status_code=status.HTTP_201_CREATED,
    summary="Record an income or expense entry",
    responses=problems(NotFound),
)
async def create_entry(body: EntryCreate, principal: Writer, session: SessionDep) -> EntryRead:
    """Owner or assistant (never API keys). `amount` is a decimal string with at most 2 places
    (e.g. "150.00"), `currency` an ISO 4217 code (default BRL). `patient_id` and
    `appointment_id` must be of this practice (404 naming the field). 423 when read-only.
    Answers 201; audited as finance.entry_created."""
    return EntryRead.model_validate(await _service(principal, session).create(body))


@router.get("/financial-entries", summary="List financial entries")
async def list_entries(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    start: Annotated[
        Day | None, Query(alias="from", description="Due on or after this date (YYYY-MM-DD).")
    ] = None,
    end: Annotated[
        Day | None, Query(alias="to", description="Due on or before this date (YYYY-MM-DD).")
    ] = None,
) -> EntryList:
    """Owner or assistant. Ordered by due date; filter by a due-date range (`from`, `to`).
    Cursor-paginated (`limit`, `cursor`; follow `next_cursor`). Deleted entries never appear."""
    rows, more = await _service(principal, session).page(
        start, end, page.limit, cursor_fields(page.cursor, date.fromisoformat, uuid.UUID)
    )
    last = rows[-1] if rows else None
    return EntryList(
        items=[EntryRead.model_validate(row) for row in rows],
        next_cursor=encode_cursor([last.due_date.isoformat(), str(last.id)])
        if more and last
        else None,
    )


@router.get("/financial-entries/summary", summary="Summarise finances over a period")
async def summary(
    principal: Reader,
    session: SessionDep,
    start: Annotated[Day, Query(alias="from", description="First day (YYYY-MM-DD).")],
    end: Annotated[Day, Query(alias="to", description="Last day, inclusive (YYYY-MM-DD).")],
) -> Summary:
    """Owner or assistant. Per currency, for due dates and payments in `from`..`to` (inclusive,
    the practice's time zone): received, outstanding, overdue, expenses paid, and received by
    payment method and by category. Amounts are decimal strings. A reversed period is empty."""
    currencies = await _service(principal, session).summary(start, end)
    return Summary(start=start, end=end, currencies=currencies)


@router.get("/financial-entries/{entry_id}", summary="Get a financial entry")
async def read_entry(entry_id: uuid.UUID, principal: Reader, session: SessionDep) -> EntryRead:
    """Owner or assistant. One entry by id; 404 for an unknown or deleted id."""
    return EntryRead.model_validate(await _service(principal, session).get(entry_id))


@router.patch("/financial-entries/{entry_id}", summary="Update a financial entry")
async def update_entry(
    entry_id: uuid.UUID, body: EntryUpdate, principal: Writer, session: SessionDep
) -> EntryRead:
    """Owner or assistant. Partial: amount, due date, `paid_at` (set it to mark the entry paid),
    method, category, description; null clears paid_at, method, category or description. 423
    when read-only. Returns the entry; audited as finance.entry_updated."""
    return EntryRead.model_validate(await _service(principal, session).update(entry_id, body))


@router.delete(
    "/financial-entries/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a financial entry",
)
async def delete_entry(entry_id: uuid.UUID, principal: Writer, session: SessionDep) -> None:
    """Owner or assistant. Soft delete: the entry disappears from lists, summaries and exports.
    423 when read-only. Answers 204; audited as finance.entry_deleted."""
    await _service(principal, session).delete(entry_id)


@router.post(
    "/appointments/{appointment_id}/charge",
    status_code=status.HTTP_201_CREATED,
    summary="Charge an appointment at the session fee",
)
async def charge_appointment(
    appointment_id: uuid.UUID, principal: Writer, session: SessionDep
) -> EntryRead:
    """Owner or assistant. Creates an income entry for the appointment's patient at the
    practice's `session_fee` and currency, due on the appointment's date in the practice's
    time zone. 409 when no session fee is set; 404 for an unknown appointment; 423 when
    read-only. Answers 201 with the entry."""
    return EntryRead.model_validate(
        await _service(principal, session).charge_appointment(appointment_id)
    )

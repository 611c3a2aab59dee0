"""/financial-entries: income and expenses, and the period summary (SPEC §3, §6)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.core.pagination import PageParams, cursor_fields, encode_cursor, page_params
from clinicflow.finance.schemas import EntryCreate, EntryList, EntryRead, EntryUpdate, Summary
from clinicflow.finance.service import FinanceService

router = APIRouter(tags=["finance"])
Reader = Annotated[Principal, Depends(require(Permission.FINANCE_READ))]
Writer = Annotated[Principal, Depends(require(Permission.FINANCE_WRITE))]


def _service(principal: Principal, session: SessionDep) -> FinanceService:
    return FinanceService(session, principal.require_tenant(), principal.actor)


@router.post(
    "/financial-entries", status_code=status.HTTP_201_CREATED, summary="Record income or an expense"
)
async def create_entry(body: EntryCreate, principal: Writer, session: SessionDep) -> EntryRead:
    return EntryRead.model_validate(await _service(principal, session).create(body))


@router.get("/financial-entries", summary="Entries by due date")
async def list_entries(
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> EntryList:
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


@router.get(
    "/financial-entries/summary", summary="Received, outstanding, overdue, by method and category"
)
async def summary(
    principal: Reader,
    session: SessionDep,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
) -> Summary:
    currencies = await _service(principal, session).summary(start, end)
    return Summary(start=start, end=end, currencies=currencies)


@router.get("/financial-entries/{entry_id}", summary="One entry")
async def read_entry(entry_id: uuid.UUID, principal: Reader, session: SessionDep) -> EntryRead:
    return EntryRead.model_validate(await _service(principal, session).get(entry_id))


@router.patch("/financial-entries/{entry_id}", summary="Update an entry (e.g. mark it paid)")
async def update_entry(
    entry_id: uuid.UUID, body: EntryUpdate, principal: Writer, session: SessionDep
) -> EntryRead:
    return EntryRead.model_validate(await _service(principal, session).update(entry_id, body))


@router.delete(
    "/financial-entries/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an entry",
)
async def delete_entry(entry_id: uuid.UUID, principal: Writer, session: SessionDep) -> None:
    await _service(principal, session).delete(entry_id)


@router.post(
    "/appointments/{appointment_id}/charge",
    status_code=status.HTTP_201_CREATED,
    summary="Bill an appointment at the practice's session fee",
)
async def charge_appointment(
    appointment_id: uuid.UUID, principal: Writer, session: SessionDep
) -> EntryRead:
    return EntryRead.model_validate(
        await _service(principal, session).charge_appointment(appointment_id)
    )

"""/audit-events: the owner reads their practice's trail; the platform admin the platform's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent
from clinicflow.audit.repository import AuditRepository
from clinicflow.audit.schemas import AuditEventPage, AuditEventRead
from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.pagination import (
    PageParams,
    cursor_fields,
    cursor_sequence,
    encode_cursor,
    page_params,
)

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/audit-events", tags=["audit"])
AuditReader = Annotated[
    Principal, Depends(require(Permission.AUDIT_READ, Permission.PLATFORM_AUDIT))
]


@router.get("", summary="List audit events")
async def list_audit_events(
    principal: AuditReader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    action: Annotated[
        str | None,
        Query(max_length=64, description="Only this action, e.g. auth.login_failed."),
    ] = None,
) -> AuditEventPage:
    """Owner: the practice's events; platform admin: the platform's events. Newest first; filter
    by `action` (e.g. auth.login_failed, record.read). Each event carries the hash chaining it
    to the previous one (tamper evidence). Cursor-paginated (`limit`, `cursor`; follow
    `next_cursor`)."""
    model = PlatformAuditEvent if principal.is_platform_admin else AuditEvent
    before = (cursor_fields(page.cursor, cursor_sequence) or (None,))[0]
    rows = await AuditRepository(session).page(model, page.limit, before, action)
    items = [AuditEventRead.model_validate(row) for row in rows[: page.limit]]
    more = len(rows) > page.limit
    return AuditEventPage(items=items, next_cursor=encode_cursor([items[-1].seq]) if more else None)

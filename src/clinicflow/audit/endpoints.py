"""/audit-events: the owner reads their practice's trail; the platform admin the platform's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from clinicflow.audit.models import AuditEvent, PlatformAuditEvent
from clinicflow.audit.repository import AuditRepository
from clinicflow.audit.schemas import AuditEventPage, AuditEventRead
from clinicflow.auth.deps import Principal, require
from clinicflow.auth.permissions import Permission
from clinicflow.core.database import SessionDep
from clinicflow.core.errors import BadRequest
from clinicflow.core.pagination import PageParams, encode_cursor, page_params

router = APIRouter(prefix="/audit-events", tags=["audit"])
AuditReader = Annotated[
    Principal, Depends(require(Permission.AUDIT_READ, Permission.PLATFORM_AUDIT))
]


@router.get("", summary="Audit trail, newest first")
async def list_audit_events(
    principal: AuditReader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditEventPage:
    model = PlatformAuditEvent if principal.is_platform_admin else AuditEvent
    before = _cursor_seq(page.cursor)
    rows = await AuditRepository(session).page(model, page.limit, before, action)
    items = [AuditEventRead.model_validate(row) for row in rows[: page.limit]]
    more = len(rows) > page.limit
    return AuditEventPage(items=items, next_cursor=encode_cursor([items[-1].seq]) if more else None)


def _cursor_seq(cursor: list[object] | None) -> int | None:
    if not cursor:
        return None
    if not isinstance(cursor[0], int):
        raise BadRequest("The cursor is malformed; use next_cursor from a previous page.")
    return cursor[0]

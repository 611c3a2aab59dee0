"""/calendar: a member's private iCalendar feed of their agenda (SPEC §3, §6)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from clinicflow.auth.deps import MemberPrincipal, RevokingMemberPrincipal
from clinicflow.calendar.service import CalendarService
from clinicflow.core.database import SessionDep, UnitOfWorkRoute
from clinicflow.core.errors import NotFound
from clinicflow.core.openapi import WORKS_IN_READ_ONLY, problems

router = APIRouter(route_class=UnitOfWorkRoute, tags=["calendar"])


class CalendarTokenIssued(BaseModel):
    token: str = Field(description="The feed's secret token; anyone with it can read the feed.")
    url: str = Field(description="The feed URL to subscribe to in a calendar app.")


@router.post(
    "/calendar/token",
    status_code=status.HTTP_201_CREATED,
    summary="Create or rotate your calendar feed URL",
)
async def issue_token(
    request: Request, principal: MemberPrincipal, session: SessionDep
) -> CalendarTokenIssued:
    """Logged-in member (bearer token; not an API key). Returns a secret token and the feed URL
    of the member's own agenda for a calendar app; the previous token stops working. 423 when
    read-only. Answers 201; audited as calendar_token.issued."""
    tenant_id = principal.require_tenant()
    token = await CalendarService(session).issue(principal.require_user(), tenant_id,
                                                 principal.actor)  # fmt: skip
    url = str(request.url_for("calendar_feed").include_query_params(token=token))
    return CalendarTokenIssued(token=token, url=url)


@router.delete(
    "/calendar/token",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke your calendar feed URL",
    responses=problems(NotFound),
    openapi_extra=WORKS_IN_READ_ONLY,
)
async def revoke_token(principal: RevokingMemberPrincipal, session: SessionDep) -> None:
    """Logged-in member (bearer token). The feed URL stops working. 404 when there is none.
    Works in read-only mode too (revoking a credential is a security action, like logging
    out). Answers 204; audited as calendar_token.revoked."""
    principal.require_tenant()
    await CalendarService(session).revoke(principal.require_user(), principal.actor)


@router.get(
    "/calendar.ics",
    name="calendar_feed",
    summary="Get your agenda as an iCalendar feed",
    responses={200: {"content": {"text/calendar": {}}}, **problems(NotFound)},
)
async def calendar_feed(
    session: SessionDep,
    token: Annotated[
        str,
        Query(min_length=8, max_length=200, description="The token from POST /calendar/token."),
    ],
) -> Response:
    """Public; the `token` from POST /calendar/token is the credential. The member's appointments
    from 90 days ago to a year ahead as `text/calendar` (RFC 5545), in the practice's time
    zone; patient names only when the practice enables `calendar_show_patient_names`. 404 for
    an invalid or revoked token."""
    body = await CalendarService(session).feed(token)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300"})  # fmt: skip

"""Private iCalendar feeds (RFC 5545): a member's agenda behind a secret URL.

The token carries its practice's id (like invitations) so the public feed request can scope its
lookup to that tenant under Row-Level Security; only the token's SHA-256 is stored. POST again
replaces the hash (rotation), DELETE removes it: either way the old URL answers 404."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.appointments.models import Appointment, Status
from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.auth.tokens import hash_refresh_token, new_opaque_token, opaque_token_payload
from clinicflow.calendar.models import CalendarToken
from clinicflow.calendar.repository import CalendarRepository
from clinicflow.core.errors import NotFound
from clinicflow.core.models import utcnow
from clinicflow.core.tenancy import tenant_context
from clinicflow.tenants.models import Tenant
from clinicflow.tenants.repository import MembershipRepository, TenantRepository
from clinicflow.users.repository import UserRepository

TOKEN_PREFIX = "cfc_"  # noqa: S105  (a token prefix, not a secret)
SHOW_NAMES_SETTING = "calendar_show_patient_names"
# The feed covers this window around now: recent history and the agenda ahead.
PAST = timedelta(days=90)
AHEAD = timedelta(days=365)
_NOT_FOUND = "No calendar feed for this token."
_ICAL_STATUS = {Status.CANCELLED: "CANCELLED", Status.SCHEDULED: "TENTATIVE"}


class CalendarService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tokens = CalendarRepository(session)

    async def issue(self, user_id: uuid.UUID, tenant_id: uuid.UUID, actor: Actor) -> str:
        """Create the member's feed token, or rotate it (the previous URL stops working)."""
        token, token_hash = new_opaque_token(TOKEN_PREFIX, tenant_id.bytes)
        current = await self.tokens.for_user(user_id)
        if current is None:
            self.tokens.add(CalendarToken(user_id=user_id, token_hash=token_hash))
        else:
            current.token_hash, current.created_at = token_hash, utcnow()
        await self.session.flush()
        await audit.record(self.session, "calendar_token.issued", actor=actor,
                           subject_type="user", subject_id=user_id)  # fmt: skip
        return token

    async def revoke(self, user_id: uuid.UUID, actor: Actor) -> None:
        if not await self.tokens.delete_for_user(user_id):
            raise NotFound("You have no calendar feed.")
        await audit.record(self.session, "calendar_token.revoked", actor=actor,
                           subject_type="user", subject_id=user_id)  # fmt: skip

    async def feed(self, token: str) -> bytes:
        tenant = await self._tenant_of(token)
        async with tenant_context(self.session, tenant.id):
            found = await self.tokens.by_hash(hash_refresh_token(token))
            # The feed is its member's: it ends with the membership and with the account
            # (neither can revoke it once it is gone).
            if found is None or not await self._still_serves(found.user_id):
                raise NotFound(_NOT_FOUND)
            now = utcnow()
            rows = await self.tokens.agenda(found.user_id, now - PAST, now + AHEAD)
        return _calendar(tenant, rows, show_names=bool(tenant.settings.get(SHOW_NAMES_SETTING)))

    async def _still_serves(self, user_id: uuid.UUID) -> bool:
        if not await MembershipRepository(self.session).is_member(user_id):
            return False
        user = await UserRepository(self.session).get(user_id)
        return user is not None and user.is_active

    async def _tenant_of(self, token: str) -> Tenant:
        payload = opaque_token_payload(token, TOKEN_PREFIX, 16)
        tenant = (
            await TenantRepository(self.session).get(uuid.UUID(bytes=payload)) if payload else None
        )
        if tenant is None:
            raise NotFound(_NOT_FOUND)
        return tenant


def _calendar(tenant: Tenant, rows: list[tuple[Appointment, str]], *, show_names: bool) -> bytes:
    zone = ZoneInfo(tenant.timezone)
    calendar = Calendar()
    calendar.add("prodid", "-//ClinicFlow//Agenda//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{tenant.name} agenda")
    calendar.add("x-wr-timezone", tenant.timezone)
    stamp = utcnow()
    for appointment, patient_name in rows:
        calendar.add_component(_event(appointment, patient_name if show_names else None, zone,
                                      stamp))  # fmt: skip
    calendar.add_missing_timezones()  # a VTIMEZONE for the practice's zone
    ical: bytes = calendar.to_ical()
    return ical


def _event(appointment: Appointment, patient_name: str | None, zone: ZoneInfo,
           stamp: datetime) -> Event:  # fmt: skip
    """Front-desk notes never leave through a feed; names only when the owner allows it."""
    event = Event()
    event.add("uid", f"{appointment.id}@clinicflow")  # stable across fetches and edits
    event.add("dtstamp", stamp)
    event.add("dtstart", appointment.start_at.astimezone(zone))
    event.add("dtend", appointment.end_at.astimezone(zone))
    event.add("summary", f"Appointment: {patient_name}" if patient_name else "Appointment")
    event.add("status", _ICAL_STATUS.get(appointment.status, "CONFIRMED"))
    if appointment.location:
        event.add("location", appointment.location)
    return event

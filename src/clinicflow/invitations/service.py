"""Inviting people into a practice; accepting creates the account or adds the membership."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.auth.deps import Principal
from clinicflow.auth.tokens import hash_refresh_token, new_opaque_token, opaque_token_payload
from clinicflow.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from clinicflow.core.models import utcnow
from clinicflow.core.security import PasswordHasher
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import tenant_context
from clinicflow.finance.repository import EntryRepository
from clinicflow.invitations.models import Invitation
from clinicflow.invitations.repository import InvitationRepository
from clinicflow.notifications.outbox import Outbox
from clinicflow.notifications.templates import invitation_email
from clinicflow.patients.repository import PatientRepository
from clinicflow.tenants.models import Role, Tenant
from clinicflow.tenants.repository import MembershipRepository, TenantRepository
from clinicflow.tenants.service import add_member, ensure_member_capacity, ensure_writable
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository
from clinicflow.users.service import create_user

TOKEN_PREFIX = "cfi_"  # noqa: S105  (a token prefix, not a secret)
LIFETIME = timedelta(days=7)
_INVALID = "This invitation is invalid, expired, revoked or already used."


@dataclass(frozen=True, slots=True)
class Accepted:
    user: User
    invitation: Invitation


def _invalid_field(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.for_field(field, message)


class InvitationService:
    def __init__(
        self, session: AsyncSession, settings: Settings, hasher: PasswordHasher, outbox: Outbox
    ) -> None:
        self.session = session
        self.settings = settings
        self.hasher = hasher
        self.outbox = outbox
        self.invitations = InvitationRepository(session)

    async def target_tenant(self, principal: Principal, requested: uuid.UUID | None) -> Tenant:
        """Owners invite into their own practice; the platform admin names one."""
        if principal.is_platform_admin:
            if requested is None:
                raise ValidationFailed(
                    "tenant_id is required for a platform admin.",
                    errors=[{"field": "tenant_id", "message": "Required.", "type": "missing"}],
                )
            tenant_id = requested
        elif requested not in (None, principal.tenant_id):
            raise PermissionDenied("You can only invite into your own practice.")
        else:
            tenant_id = principal.require_tenant()
        tenant = await TenantRepository(self.session).get(tenant_id)
        if tenant is None:
            raise NotFound("No practice with this id.")
        return tenant

    async def check_platform_invitation(
        self, principal: Principal, tenant: Tenant, role: Role
    ) -> None:
        """The platform admin never reaches clinical data (SPEC §2), not even through a member
        they invite: they may only invite the first owner of a practice that has no owner and
        holds no patient or financial entry (one they just created). Anyone else is the
        owners' to invite. An orphaned practice that holds data is recovered outside the API.
        Checked again when the invitation is accepted (`_refuse_operator_opening`)."""
        if not principal.is_platform_admin:
            return
        if role != Role.OWNER:
            raise PermissionDenied(
                "A platform admin invites only a new practice's owner; its members are the "
                "owner's to invite."
            )
        async with tenant_context(self.session, tenant.id):
            await self._refuse_operator_opening()

    async def _refuse_operator_opening(self) -> None:
        """In the current practice: 403 once it has an owner or holds clinical data."""
        if await MembershipRepository(self.session).owners_with_users():
            raise PermissionDenied("This practice has an owner, who invites its members.")
        if (
            await PatientRepository(self.session).any_stored()
            or await EntryRepository(self.session).any_stored()
        ):
            raise PermissionDenied(
                "This practice holds clinical data: a platform admin cannot give anyone "
                "access to it."
            )

    async def invite(self, tenant: Tenant, email: str, role: Role, actor: Actor) -> Invitation:
        # An owner's request was refused by its credential already; the platform admin's
        # credential names no practice, so the practice itself is asked.
        ensure_writable(tenant)
        email = email.strip().lower()
        now = utcnow()
        async with tenant_context(self.session, tenant.id):
            existing = await UserRepository(self.session).get_by_email(email)
            if existing and await MembershipRepository(self.session).is_member(existing.id):
                raise Conflict("This person is already a member of the practice.")
            # Refused now, not after the invitee has chosen a password (checked again on accept).
            await ensure_member_capacity(self.session, tenant)
            await self.invitations.revoke_pending_for(email, now)  # the newest link wins
            token, token_hash = new_opaque_token(TOKEN_PREFIX, tenant.id.bytes)
            invitation = Invitation(
                tenant_id=tenant.id, email=email, role=role, token_hash=token_hash,
                invited_by=actor.user_id, expires_at=now + LIFETIME,
            )  # fmt: skip
            self.invitations.add(invitation)
            await self.session.flush()
            await audit.record(
                self.session, "invitation.created", actor=actor, subject_type="invitation",
                subject_id=invitation.id, details={"email": email, "role": role.value},
            )  # fmt: skip
        inviter = await UserRepository(self.session).get(actor.user_id) if actor.user_id else None
        if inviter is not None and inviter.is_platform_admin:
            # The operator granting access to a practice: on the platform's own chain too.
            details = {"email": email, "role": role.value, "tenant_id": str(tenant.id)}
            async with tenant_context(self.session, None):
                await audit.record(
                    self.session, "invitation.created", actor=actor, subject_type="invitation",
                    subject_id=invitation.id, details=details,
                )  # fmt: skip
        message = invitation_email(
            to=email, tenant_name=tenant.name, role=role.value,
            inviter_name=inviter.full_name if inviter else "ClinicFlow",
            link=f"{self.settings.frontend_url}/invitations/accept?token={token}",
            expires_at=invitation.expires_at,
        )  # fmt: skip
        self.outbox.queue_email(self.session, message)
        return invitation

    async def list_pending(self, tenant: Tenant) -> list[Invitation]:
        async with tenant_context(self.session, tenant.id):
            return await self.invitations.list_pending(utcnow())

    async def revoke(self, tenant: Tenant, invitation_id: uuid.UUID, actor: Actor) -> None:
        async with tenant_context(self.session, tenant.id):
            invitation = await self.invitations.get(invitation_id)
            if invitation is None or invitation.revoked_at or invitation.accepted_at:
                raise NotFound("No pending invitation with this id.")
            invitation.revoked_at = utcnow()
            await audit.record(
                self.session, "invitation.revoked", actor=actor,
                subject_type="invitation", subject_id=invitation.id,
            )  # fmt: skip

    async def details(self, token: str) -> tuple[Invitation, Tenant]:
        tenant = await self._tenant_of(token)
        async with tenant_context(self.session, tenant.id):
            invitation = await self.invitations.get_live_by_hash(
                hash_refresh_token(token), utcnow()
            )
        if invitation is None:
            raise NotFound(_INVALID)
        return invitation, tenant

    async def accept(
        self, token: str, password: str | None, full_name: str | None, caller: Principal | None
    ) -> Accepted:
        tenant = await self._tenant_of(token)
        async with tenant_context(self.session, tenant.id):
            invitation = await self.invitations.accept(hash_refresh_token(token), utcnow())
            if invitation is None:
                raise NotFound(_INVALID)
            # A valid link into a read-only practice: 423, and the rollback keeps it pending.
            ensure_writable(tenant)
            if await self._from_the_operator(invitation):
                # What was true when the platform admin invited may not be now: a second
                # owner link accepted after the first owner joined (and registered patients)
                # would open the practice to whoever the operator chose. Owners take turns.
                await TenantRepository(self.session).lock(tenant.id)
                await self._refuse_operator_opening()
            user = await self._account_for(invitation, password, full_name, caller)
            invitation.accepted_user_id = user.id
            await add_member(self.session, tenant, user, invitation.role)
            await audit.record(
                self.session, "invitation.accepted", actor=Actor(user_id=user.id),
                subject_type="invitation", subject_id=invitation.id,
                details={"role": invitation.role.value},
            )  # fmt: skip
        return Accepted(user, invitation)

    async def _from_the_operator(self, invitation: Invitation) -> bool:
        if invitation.invited_by is None:
            return False
        inviter = await UserRepository(self.session).get(invitation.invited_by)
        return inviter is not None and inviter.is_platform_admin

    async def _account_for(
        self,
        invitation: Invitation,
        password: str | None,
        full_name: str | None,
        caller: Principal | None,
    ) -> User:
        """An existing account must be logged in as itself; otherwise one is created."""
        existing = await UserRepository(self.session).get_by_email(invitation.email)
        if existing is not None and existing.is_platform_admin:
            raise PermissionDenied("A platform admin account never joins a practice.")
        if existing is not None:
            if caller is None or caller.user_id != existing.id:
                raise Conflict(
                    "An account with this e-mail exists: log in as it, then accept again."
                )
            return existing
        if not password or not full_name:
            raise ValidationFailed(
                "password and full_name are required to create the account.",
                errors=[
                    {"field": name, "message": "Required.", "type": "missing"}
                    for name, value in (("password", password), ("full_name", full_name))
                    if not value
                ],
            )
        user = await create_user(
            self.session, self.hasher, email=invitation.email, password=password,
            full_name=full_name,
        )  # fmt: skip
        user.email_verified_at = utcnow()  # the link reached this mailbox
        return user

    async def _tenant_of(self, token: str) -> Tenant:
        payload = opaque_token_payload(token, TOKEN_PREFIX, 16)
        tenant = (
            await TenantRepository(self.session).get(uuid.UUID(bytes=payload)) if payload else None
        )
        if tenant is None:
            raise NotFound(_INVALID)
        return tenant

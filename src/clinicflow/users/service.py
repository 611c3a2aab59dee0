"""Account creation and password rules shared by sign-up, invitations, seeding and the CLI."""

from __future__ import annotations

import uuid

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit import service as audit
from clinicflow.audit.service import Actor
from clinicflow.auth.repository import AuthRepository
from clinicflow.auth.service import register_wrong_password
from clinicflow.core.database import released
from clinicflow.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from clinicflow.core.input_guard import has_control_characters
from clinicflow.core.models import utcnow
from clinicflow.core.security import PasswordHasher, password_problems
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import tenant_context
from clinicflow.tenants.repository import MembershipRepository, TenantRepository
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository
from clinicflow.users.schemas import PracticeMembership, UserCreate, UserUpdate, UserUpdateMe


def require_acceptable_password(
    password: str, *, email: str, full_name: str, field: str = "password"
) -> None:
    """422 for a weak or common password, naming the request's `field` that carried it."""
    problem = password_problems(password, user_inputs=[email, email.split("@")[0], full_name])
    if problem:
        raise ValidationFailed(
            problem, errors=[{"field": field, "message": problem, "type": "weak_password"}]
        )


async def create_user(
    session: AsyncSession,
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    full_name: str,
    is_platform_admin: bool = False,
) -> User:
    email = email.strip().lower()
    repository = UserRepository(session)
    if await repository.get_by_email(email) is not None:
        raise Conflict("An account with this e-mail already exists.")
    require_acceptable_password(password, email=email, full_name=full_name)
    user = User(
        email=email,
        full_name=full_name.strip(),
        password_hash=await hasher.hash(password),
        is_platform_admin=is_platform_admin,
        password_changed_at=utcnow(),
    )
    repository.add(user)
    await session.flush()
    return user


async def create_account(
    session: AsyncSession,
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    full_name: str,
    is_platform_admin: bool,
    actor: Actor,
    via: str,
) -> User:
    """An account made by an operator (POST /users, `clinicflow create-admin`, FIRST_ADMIN_*),
    audited on the platform chain as user.created, naming whether it is a platform admin: the
    grant of the platform's highest role is a role change the trail must show. The command
    line and start-up settings pass the checks POST /users does (its body schema, and the
    control-character gate HTTP input passes first)."""
    _check_operator_input(email=email, full_name=full_name)
    user = await create_user(
        session, hasher, email=email, password=password, full_name=full_name,
        is_platform_admin=is_platform_admin,
    )  # fmt: skip
    async with tenant_context(session, None):
        await audit.record(
            session, "user.created", actor=actor, subject_type="user", subject_id=user.id,
            details={"email": user.email, "is_platform_admin": is_platform_admin, "via": via},
        )  # fmt: skip
    return user


def _check_operator_input(*, email: str, full_name: str) -> None:
    try:
        UserCreate.model_validate(
            {"email": email, "full_name": full_name, "password": "x" * 8}  # checked later
        )
    except PydanticValidationError as error:
        problems = [p for p in error.errors() if p["loc"] != ("password",)]
        if problems:
            field = str(problems[0]["loc"][0])
            raise ValidationFailed.for_field(field, problems[0]["msg"]) from error
    for field, value in (("email", email), ("full_name", full_name)):
        if has_control_characters(value):
            raise ValidationFailed.for_field(field, "Control characters are not allowed.")


async def practices_of(session: AsyncSession, user: User) -> list[PracticeMembership]:
    """Every practice the user belongs to, with role, so a client can pick X-Tenant-ID (in no
    particular order: the endpoint pages them by name)."""
    memberships = await MembershipRepository(session).practices_of(user.id)
    tenants = TenantRepository(session)
    found = []
    for tenant_id, role in memberships:
        tenant = await tenants.get(tenant_id)
        if tenant is not None:
            found.append(
                PracticeMembership(
                    tenant_id=tenant_id, name=tenant.name, role=role,
                    is_default=tenant_id == user.default_tenant_id,
                )
            )  # fmt: skip
    return found


class WrongCurrentPassword(PermissionDenied):
    """403, not 422: the input is well formed; the credential it re-presents is wrong (or the
    account is locked). The failure counter and audit events must survive the answer."""

    commit_changes = True


class UserService:
    """Self-service profile and password, and the platform admin's account management."""

    def __init__(self, session: AsyncSession, hasher: PasswordHasher, settings: Settings) -> None:
        self.session = session
        self.hasher = hasher
        self.settings = settings
        self.users = UserRepository(session)

    async def get(self, user_id: uuid.UUID) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound("No user with this id.")
        return user

    async def update_me(self, user_id: uuid.UUID, changes: UserUpdateMe) -> User:
        user = await self.get(user_id)
        if changes.full_name is not None:
            user.full_name = changes.full_name.strip()
        if changes.username is not None:
            username = changes.username.lower()
            if await self.users.username_taken(username, user.id):
                raise Conflict("This username is taken.")
            user.username = username
        await self.session.flush()
        return user

    async def change_password(
        self, user_id: uuid.UUID, current: str, new: str, keep_session: uuid.UUID
    ) -> None:
        """Verifies the current password; every other session of the user is revoked.

        A wrong current password counts as a failed login of the account (same counter, same
        audit event, same lockout): otherwise a stolen access token could try passwords here
        without limit. While the account is locked, none is checked."""
        stored_hash = (await self.get(user_id)).password_hash
        # As at login: no pooled connection held while argon2 checks a guess.
        async with released(self.session):
            verified = await self.hasher.verify(current, stored_hash)
        user = await self.users.get_for_update(user_id)  # serialise the counter
        if user is None:
            raise NotFound("No user with this id.")
        if user.password_hash != stored_hash:  # changed meanwhile: check what is stored now
            verified = await self.hasher.verify(current, user.password_hash)
        async with tenant_context(self.session, user.default_tenant_id):
            if user.locked_until is not None and user.locked_until > utcnow():
                await audit.record(
                    self.session, "auth.login_failed", actor=audit.Actor(user_id=user.id),
                    subject_type="user", subject_id=user.id,
                    details={"reason": "locked", "via": "change_password"},
                )  # fmt: skip
                raise WrongCurrentPassword(
                    "The account is locked for a while after repeated wrong passwords; try "
                    "again later."
                )
            if not verified.valid:
                await register_wrong_password(
                    self.session, self.settings, user,
                    {"reason": "password", "via": "change_password"},
                )  # fmt: skip
                raise WrongCurrentPassword("The current password is incorrect.")
        require_acceptable_password(
            new, email=user.email, full_name=user.full_name, field="new_password"
        )
        user.failed_login_count = 0
        user.password_hash = await self.hasher.hash(new)
        user.password_changed_at = utcnow()
        await AuthRepository(self.session).revoke_sessions(
            user.id, utcnow(), "password_changed", keep=keep_session
        )
        async with tenant_context(self.session, user.default_tenant_id):
            await audit.record(
                self.session, "user.password_changed", actor=audit.Actor(user_id=user.id),
                subject_type="user", subject_id=user.id,
            )  # fmt: skip

    async def list_page(self, limit: int, after: uuid.UUID | None) -> tuple[list[User], bool]:
        rows = await self.users.list_page(limit, after)
        return rows[:limit], len(rows) > limit

    async def admin_update(self, user_id: uuid.UUID, changes: UserUpdate, actor: Actor) -> User:
        user = await self.get(user_id)
        if changes.full_name is not None:
            user.full_name = changes.full_name.strip()
        if changes.is_active is not None and changes.is_active != user.is_active:
            await self._set_active(user, changes.is_active, actor)
        await self.session.flush()
        return user

    async def deactivate(self, user_id: uuid.UUID, actor: Actor) -> None:
        user = await self.get(user_id)
        if user.id == actor.user_id:
            raise Conflict("You cannot delete your own account.")
        await self._set_active(user, False, actor)

    async def _set_active(self, user: User, active: bool, actor: Actor) -> None:
        user.is_active = active
        if not active:
            await AuthRepository(self.session).revoke_sessions(user.id, utcnow(), "deactivated")
        await audit.record(
            self.session, "user.activated" if active else "user.deactivated", actor=actor,
            subject_type="user", subject_id=user.id,
        )  # fmt: skip

    async def unlock(self, user_id: uuid.UUID, actor: Actor) -> None:
        user = await self.get(user_id)
        user.locked_until = None
        user.failed_login_count = 0
        await audit.record(
            self.session, "user.unlocked", actor=actor, subject_type="user", subject_id=user.id
        )

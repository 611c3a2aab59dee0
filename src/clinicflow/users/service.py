"""Account creation and password rules shared by sign-up, invitations, seeding and the CLI."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.errors import Conflict, ValidationFailed
from clinicflow.core.models import utcnow
from clinicflow.core.security import PasswordHasher, password_problems
from clinicflow.users.models import User
from clinicflow.users.repository import UserRepository


def require_acceptable_password(password: str, *, email: str, full_name: str) -> None:
    problem = password_problems(password, user_inputs=[email, email.split("@")[0], full_name])
    if problem:
        raise ValidationFailed(
            problem, errors=[{"field": "password", "message": problem, "type": "weak_password"}]
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

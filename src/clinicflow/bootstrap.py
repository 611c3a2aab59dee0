"""Start-up and demo data: the first platform admin, and the `seed` demo practices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.audit.service import Actor
from clinicflow.core.crypto import KeyRing
from clinicflow.core.database import Database, committed
from clinicflow.core.models import utcnow
from clinicflow.core.security import PasswordHasher, hasher_for
from clinicflow.core.settings import Settings
from clinicflow.core.tenancy import tenant_context
from clinicflow.demo import fill_practice
from clinicflow.notifications.outbox import Outbox
from clinicflow.tenants.models import Role
from clinicflow.tenants.repository import TenantRepository
from clinicflow.tenants.service import add_member, create_tenant
from clinicflow.users.repository import UserRepository
from clinicflow.users.service import create_account, create_user

logger = structlog.get_logger("clinicflow.bootstrap")
DEMO_PASSWORD = "demo-clinic-2026!"  # noqa: S105  (printed by `make run`; demo data only)
DEMO_ADMIN_EMAIL = "admin@clinicflow.local"
DEMO_PRACTICES = (
    ("Clínica Aurora", "America/Sao_Paulo", "aurora.example",
     ("Ana Souza", "Bruno Lima", "Carla Dias")),
    ("Harbor Therapy", "America/New_York", "harbor.example",
     ("Dana Reed", "Eli Brooks", "Fay Morgan")),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoLogin:
    role: str
    email: str
    tenant: str | None


async def calibrate_failed_logins(database: Database, hasher: PasswordHasher) -> None:
    """Failed logins as slow as a check of the costliest stored hash (`PasswordHasher.calibrate`);
    run at start-up: stored hashes only ever move to the configured cost, never away from it."""
    async with database.sessionmaker() as session:
        samples = await UserRepository(session).password_hash_samples()
    await hasher.calibrate(samples)
    if hasher.failure_floor:
        logger.info(
            "failed_logins_held", floor_ms=round(hasher.failure_floor * 1000, 1),
            parameter_sets=len(samples),
        )  # fmt: skip


async def ensure_first_admin(database: Database, settings: Settings) -> None:
    """FIRST_ADMIN_EMAIL / FIRST_ADMIN_PASSWORD create the platform admin when missing.

    Every server process runs this at start-up at the same moment: the one whose insert loses
    the race on the unique e-mail finds the admin there, which is all it wanted."""
    if not (settings.first_admin_email and settings.first_admin_password):
        return
    try:
        async with committed(database) as session:
            if await UserRepository(session).get_by_email(settings.first_admin_email):
                return
            await create_account(
                session,
                hasher_for(settings),
                email=settings.first_admin_email,
                password=settings.first_admin_password.get_secret_value(),
                full_name="Platform administrator",
                is_platform_admin=True,
                actor=Actor(),
                via="first_admin",
            )
    except IntegrityError:
        logger.info("first_admin_created_by_another_process", email=settings.first_admin_email)
        return
    logger.info("first_admin_created", email=settings.first_admin_email)


async def seed_demo(
    database: Database, settings: Settings, *, progress: Callable[[str], None] = lambda _: None
) -> list[DemoLogin]:
    """Idempotent: practices that already exist are left as they are."""
    hasher = hasher_for(settings)
    keys = KeyRing.from_setting(settings.encryption_keys.get_secret_value())
    outbox = Outbox(keys, settings)
    logins = [DemoLogin("platform_admin", DEMO_ADMIN_EMAIL, None)]
    async with committed(database) as session:
        if await UserRepository(session).get_by_email(DEMO_ADMIN_EMAIL) is None:
            await create_user(
                session, hasher, email=DEMO_ADMIN_EMAIL, password=DEMO_PASSWORD,
                full_name="Demo Platform Admin", is_platform_admin=True,
            )  # fmt: skip
        for name, zone, domain, people in DEMO_PRACTICES:
            progress(name)
            logins += await _seed_practice(
                session, hasher, keys, outbox, name, zone, domain, people
            )
    return logins


async def _seed_practice(
    session: AsyncSession,
    hasher: PasswordHasher,
    keys: KeyRing,
    outbox: Outbox,
    name: str,
    zone: str,
    domain: str,
    people: tuple[str, str, str],
) -> list[DemoLogin]:
    roles = (Role.OWNER, Role.ASSISTANT, Role.VIEWER)
    emails = [f"{person.split()[0].lower()}@{domain}" for person in people]
    logins = [DemoLogin(role.value, email, name) for role, email in zip(roles, emails, strict=True)]
    if await TenantRepository(session).get_by_name(name) is not None:
        return logins
    tenant = await create_tenant(session, name=name, timezone=zone)
    users = [
        await create_user(session, hasher, email=email, password=DEMO_PASSWORD, full_name=person)
        for email, person in zip(emails, people, strict=True)
    ]
    for role, user in zip(roles, users, strict=True):
        user.email_verified_at = utcnow()  # demo addresses cannot receive the link
        await add_member(session, tenant, user, role)
    async with tenant_context(session, tenant.id):
        await fill_practice(session, tenant, users[0].id, keys, outbox)
    return logins

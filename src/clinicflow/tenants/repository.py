"""Queries of tenants, plans and memberships."""

from __future__ import annotations

import uuid

from sqlalchemy import Uuid, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.hotread import HotRead
from clinicflow.core.tenancy import ALL_TENANTS_OPTION
from clinicflow.tenants.models import Membership, Plan, PracticeCalendar, Role, Tenant
from clinicflow.users.models import User

_PRACTICES_OF = text("SELECT tenant_id, role FROM user_practices(:user_id)")
_CALENDAR = HotRead(
    select(Tenant.name, Tenant.timezone, Tenant.settings).where(
        Tenant.id == bindparam("tenant_id", type_=Uuid()), Tenant.deleted_at.is_(None)
    )
)
# A member of the session's practice (the tenant filter adds the practice).
_MEMBER = HotRead(
    select(Membership.user_id).where(Membership.user_id == bindparam("user_id", type_=Uuid()))
)

# An owner of the session's practice: the people appointments are booked with.
_OWNER = HotRead(
    select(Membership.user_id).where(
        Membership.user_id == bindparam("user_id", type_=Uuid()), Membership.role == Role.OWNER
    )
)


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: uuid.UUID) -> Tenant | None:
        tenant = await self.session.get(Tenant, tenant_id)
        return tenant if tenant is not None and tenant.deleted_at is None else None

    async def calendar(self, tenant_id: uuid.UUID) -> PracticeCalendar | None:
        """The practice's time zone and settings, without loading the practice (availability
        is asked for on every booking screen and by every chatbot)."""
        rows = await _CALENDAR.rows(self.session, {"tenant_id": tenant_id})
        return rows[0] if rows else None

    async def lock(self, tenant_id: uuid.UUID) -> None:
        """Serialise count-then-insert limits of one practice across processes (PostgreSQL;
        SQLite writers already hold the database's write lock)."""
        await self.session.execute(
            select(Tenant.id).where(Tenant.id == tenant_id).with_for_update()
        )

    async def all_ids(self) -> list[uuid.UUID]:
        """Every practice, deleted ones too (maintenance walks them one RLS scope at a time)."""
        return list((await self.session.execute(select(Tenant.id).order_by(Tenant.id))).scalars())

    async def live_ids_page(self, limit: int, after: uuid.UUID | None) -> list[uuid.UUID]:
        """Practices not deleted, in id order, one more than `limit` (whether a next page is)."""
        statement = select(Tenant.id).where(Tenant.deleted_at.is_(None))
        if after is not None:
            statement = statement.where(Tenant.id > after)
        statement = statement.order_by(Tenant.id).limit(limit + 1)
        return list((await self.session.execute(statement)).scalars())

    async def get_by_name(self, name: str) -> Tenant | None:
        statement = select(Tenant).where(Tenant.name == name, Tenant.deleted_at.is_(None))
        return (await self.session.execute(statement)).scalars().first()

    async def get_plan(self, plan_id: uuid.UUID) -> Plan | None:
        return await self.session.get(Plan, plan_id)

    async def get_plan_by_name(self, name: str) -> Plan | None:
        statement = select(Plan).where(Plan.name == name)
        return (await self.session.execute(statement)).scalar_one_or_none()

    def add(self, entity: Tenant | Plan) -> None:
        self.session.add(entity)


class MembershipRepository:
    """Tenant-scoped: sees the memberships of the session's tenant only."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_for_user(self, user_id: uuid.UUID) -> Membership | None:
        statement = select(Membership).where(Membership.user_id == user_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def is_member(self, user_id: uuid.UUID) -> bool:
        """Whether the user belongs to the session's practice: asked for every booking and
        availability request that names its professional (every chatbot's), so read without
        loading the membership."""
        return bool(await _MEMBER.rows(self.session, {"user_id": user_id}))

    async def is_owner(self, user_id: uuid.UUID) -> bool:
        """Whether the user is an owner of the session's practice, i.e. one of its
        professionals (`owners_with_users`): asked, like `is_member`, on the booking path."""
        return bool(await _OWNER.rows(self.session, {"user_id": user_id}))

    def add(self, membership: Membership) -> None:
        self.session.add(membership)

    async def list_with_users(self) -> list[tuple[Membership, User]]:
        statement = (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .order_by(User.full_name, User.id)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def practices_of(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """(tenant id, role) of every practice the user belongs to, across tenants: through
        user_practices() on PostgreSQL (RLS allows no such query), the application scope's
        all-tenants option on the embedded database."""
        if self.session.get_bind().dialect.name == "postgresql":
            rows = await self.session.execute(_PRACTICES_OF, {"user_id": user_id})
            return [(row.tenant_id, row.role) for row in rows]
        statement = select(Membership.tenant_id, Membership.role).where(
            Membership.user_id == user_id
        )
        rows = await self.session.execute(statement.execution_options(**{ALL_TENANTS_OPTION: True}))
        return [(row.tenant_id, Role(row.role).value) for row in rows]

    async def owners_with_users(self) -> list[tuple[Membership, User]]:
        statement = (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.role == Role.OWNER)
            .order_by(User.full_name, User.id)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def count_owners(self) -> int:
        statement = (
            select(func.count()).select_from(Membership).where(Membership.role == Role.OWNER)
        )
        return (await self.session.execute(statement)).scalar_one()

    async def lock_owners(self) -> None:
        """Row locks on the owners, so two demotions cannot both see a second owner."""
        await self.session.execute(
            select(Membership.id).where(Membership.role == Role.OWNER).with_for_update()
        )

    async def delete(self, membership: Membership) -> None:
        await self.session.delete(membership)


class PlatformRepository:
    """Platform tables (tenants, plans) across practices, for the platform admin."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def tenants_page(
        self, q: str | None, limit: int, after: uuid.UUID | None
    ) -> list[Tenant]:
        statement = (
            select(Tenant).where(Tenant.deleted_at.is_(None)).order_by(Tenant.id).limit(limit + 1)
        )
        if q:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            statement = statement.where(Tenant.name.ilike(f"%{escaped}%", escape="\\"))
        if after is not None:
            statement = statement.where(Tenant.id > after)
        return list((await self.session.execute(statement)).scalars())

    async def plans(self) -> list[Plan]:
        return list((await self.session.execute(select(Plan).order_by(Plan.name))).scalars())

    async def count_members(self) -> int:
        """Inside a tenant's scope: that practice's members."""
        return (
            await self.session.execute(select(func.count()).select_from(Membership))
        ).scalar_one()

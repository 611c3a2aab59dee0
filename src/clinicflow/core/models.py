"""Declarative base, column types and mixins shared by every domain's models."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, MetaData, TypeDecorator, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from uuid_utils.compat import uuid7

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """UUIDv7: time-ordered, so primary-key indexes stay append-mostly."""
    return uuid7()


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        # asyncpg answers a timestamptz in UTC already (it decodes the wire's UTC microseconds),
        # so nothing is left to convert: a call per timestamp of every row read, saved.
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime, uuid.UUID: Uuid}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-10)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class TenantOwned:
    """A row owned by one tenant: `tenant_id` leads its primary key.

    Every key leads with the tenant (SPEC §2: Citus distribution, foreign keys that can never
    cross tenants). Rows of these classes are filtered and stamped by `clinicflow.core.tenancy`,
    and protected by RLS on PostgreSQL.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(
            ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True, sort_order=-20
        )


class TenantScoped(TenantOwned):
    """A tenant's row with its own id: the primary key is `(tenant_id, id)`."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-10)


def row_columns(model: type[Base], alias: Any = None) -> tuple[Any, ...]:
    """Every mapped column of `model` as its ORM attribute (of `alias`, an `aliased(model)`,
    if given), for reads taken as column rows rather than entities. The ORM attributes (never
    the Table's columns) keep the statement an ORM one, which the tenant scope
    (`core.tenancy`) filters."""
    source = model if alias is None else alias
    return tuple(getattr(source, column.key) for column in model.__mapper__.column_attrs)

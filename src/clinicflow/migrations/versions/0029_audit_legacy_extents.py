"""audit_legacy_extents: how far each chain's legacy events go, signed with the audit key.

0020 left the events already written as legacy (mac_version 1: a plain SHA-256, which anyone
can compute) and verify accepted a legacy event wherever no keyed event came before it in its
chain. So whoever can write the audit tables (the owner role, a superuser) could rewrite a
chain, or drop events from it, as legacy events without the key, and verify said "intact".

This revision records, for every chain holding legacy events now, the seq and hash of its last
legacy event before its first keyed one, with an HMAC under AUDIT_HMAC_KEY (handed over by
`clinicflow db upgrade`; the database never holds it). Verify accepts a legacy event only up
to its chain's record, and only if the event there has the recorded hash; a chain without a
record (every chain of a database created after 0020, every chain created from now on) holds
none, and a record whose HMAC fails is tampering. A chain with no legacy event gets no record,
so a database migrated from scratch needs no key here. The application role reads the table
and never writes it (ensure_app_role revokes INSERT, UPDATE, DELETE).

It signs what the chains hold when it runs (so does a later downgrade and upgrade, run by
someone holding the key): run `clinicflow audit verify` on an older database before upgrading.
The owner role is subject to FORCE RLS on audit_events, so each practice's chain is read with
app.tenant_id set to it; the setting is emptied afterwards.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

from clinicflow.audit.legacy import AUDIT_KEY_ATTRIBUTE, extent_mac

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORM = "platform"  # the platform chain's name (clinicflow.audit.heads.chain_name)

_tenants = sa.table("tenants", sa.column("id", sa.Uuid()))
_extents = sa.table(
    "audit_legacy_extents",
    sa.column("chain", sa.String()),
    sa.column("last_seq", sa.BigInteger()),
    sa.column("last_hash", sa.String()),
    sa.column("mac", sa.String()),
)


def _events(name: str, *extra: sa.ColumnClause[object]) -> sa.TableClause:
    return sa.table(
        name,
        *extra,
        sa.column("seq", sa.BigInteger()),
        sa.column("hash", sa.String()),
        sa.column("mac_version", sa.SmallInteger()),
    )


_tenant_events = _events("audit_events", sa.column("tenant_id", sa.Uuid()))
_platform_events = _events("platform_audit_events")


def upgrade() -> None:
    op.create_table(
        "audit_legacy_extents",
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_legacy_extents")),
    )
    _record_extents(op.get_bind())


def _last_legacy(
    connection: sa.Connection, table: sa.TableClause, *scope: sa.ColumnElement[bool]
) -> tuple[int, str] | None:
    """The chain's last legacy event before its first keyed one (legacy events came first)."""
    first_keyed = (
        sa.select(sa.func.min(table.c.seq)).where(table.c.mac_version != 1, *scope)
    ).scalar_subquery()
    query = (
        sa.select(table.c.seq, table.c.hash)
        .where(
            table.c.mac_version == 1,
            *scope,
            sa.or_(first_keyed.is_(None), table.c.seq < first_keyed),
        )
        .order_by(table.c.seq.desc())
        .limit(1)
    )
    row = connection.execute(query).first()
    return (row.seq, row.hash) if row is not None else None


def _record_extents(connection: sa.Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    set_tenant = sa.text("SELECT set_config('app.tenant_id', :tenant_id, true)")
    found: dict[str, tuple[int, str]] = {}
    platform = _last_legacy(connection, _platform_events)
    if platform is not None:
        found[PLATFORM] = platform
    for tenant_id in list(connection.execute(sa.select(_tenants.c.id)).scalars()):
        if postgres:
            connection.execute(set_tenant, {"tenant_id": str(tenant_id)})
        last = _last_legacy(connection, _tenant_events, _tenant_events.c.tenant_id == tenant_id)
        if last is not None:
            found[str(tenant_id)] = last
    if postgres:
        connection.execute(set_tenant, {"tenant_id": ""})
    if not found:
        return
    key = _audit_key()
    connection.execute(
        _extents.insert(),
        [
            {"chain": chain, "last_seq": seq, "last_hash": last_hash,
             "mac": extent_mac(key, chain, seq, last_hash)}
            for chain, (seq, last_hash) in found.items()
        ],
    )  # fmt: skip


def _audit_key() -> bytes:
    config = op.get_context().config
    key = config.attributes.get(AUDIT_KEY_ATTRIBUTE) if config is not None else None
    if not isinstance(key, bytes) or not key:
        raise CommandError(
            "the audit trail holds legacy events, whose extent must be signed with "
            "AUDIT_HMAC_KEY: run this migration with `clinicflow db upgrade`"
        )
    return key


def downgrade() -> None:
    op.drop_table("audit_legacy_extents")

"""PostgreSQL Row-Level Security and the application role's grants (SPEC §2, layer 3)."""

from __future__ import annotations

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

POLICY_NAME = "tenant_isolation"
# Fails closed: never set, or left empty by an earlier transaction -> NULL, which matches nothing.
TENANT_PREDICATE = "tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid"
# The application reads these and appends to them only through the audit_append_* functions
# (which re-check the chain), never with a plain INSERT, UPDATE or DELETE.
APPEND_ONLY_TABLES = ("audit_events", "platform_audit_events")
# Written by migrations alone (0029, under the audit key); the application only reads them.
MIGRATION_WRITTEN_TABLES = ("audit_legacy_extents",)


class AppRoleError(RuntimeError):
    """The configured application role cannot be used safely."""


def enable_tenant_rls(table: str) -> None:
    """Called by migrations for every table with a tenant_id column."""
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {POLICY_NAME} ON {table} "
        f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
    )


def disable_tenant_rls(table: str) -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
    op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


def _quote(connection: Connection, identifier: str) -> str:
    return connection.dialect.identifier_preparer.quote_identifier(identifier)


def ensure_app_role(connection: Connection, role: str, password: str | None) -> None:
    """Create the application role if missing and (re)grant exactly what it needs.

    Run after every upgrade, as the owner role: new tables get their grants, and a role that
    could bypass RLS is refused rather than silently used.
    """
    if connection.dialect.name != "postgresql":
        return
    row = connection.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"), {"role": role}
    ).first()
    if row is None:
        if password is None:
            raise AppRoleError(f"Role {role!r} does not exist; set APP_DB_PASSWORD to create it.")
        statement = connection.execute(
            text(
                "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOBYPASSRLS "
                "NOCREATEDB NOCREATEROLE', CAST(:role AS text), CAST(:password AS text))"
            ),
            {"role": role, "password": password},
        ).scalar_one()
        connection.execute(text(statement))
    elif row.rolsuper or row.rolbypassrls:
        raise AppRoleError(f"Role {role!r} is a superuser or has BYPASSRLS: RLS would not apply.")
    quoted = _quote(connection, role)
    database = _quote(
        connection, connection.execute(text("SELECT current_database()")).scalar_one()
    )
    for statement in (
        f"GRANT CONNECT ON DATABASE {database} TO {quoted}",
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {quoted}",
        f"REVOKE INSERT, UPDATE, DELETE ON {', '.join(APPEND_ONLY_TABLES)} FROM {quoted}",
        *_revoke_writes(connection, MIGRATION_WRITTEN_TABLES, quoted),
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {quoted}",
    ):
        connection.execute(text(statement))


def privileges_past_rls(connection: Connection) -> str | None:
    """What lets the connected role past row-level security, in words, or None: a superuser,
    BYPASSRLS, or owning the tables (FORCE binds an owner too, but an owner may turn it off)."""
    row = connection.execute(
        text(
            "SELECT rolsuper, rolbypassrls, EXISTS (SELECT 1 FROM pg_tables WHERE "
            "schemaname = 'public' AND tableowner = current_user) AS owns "
            "FROM pg_roles WHERE rolname = current_user"
        )
    ).one()
    if row.rolsuper:
        return "is a superuser"
    if row.rolbypassrls:
        return "has BYPASSRLS"
    if row.owns:
        return "owns the tables"
    return None


def _revoke_writes(connection: Connection, tables: tuple[str, ...], role: str) -> list[str]:
    """Only for the tables that exist (the database may be migrated to an older revision)."""
    present = set(
        connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
    )
    existing = [table for table in tables if table in present]
    return (
        [f"REVOKE INSERT, UPDATE, DELETE ON {', '.join(existing)} FROM {role}"] if existing else []
    )

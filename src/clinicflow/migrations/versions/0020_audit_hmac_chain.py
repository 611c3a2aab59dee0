"""Audit events in an HMAC chain, appended only through functions that check the link.

Events written before are marked mac_version 1 (their plain SHA-256 still verifies); new events
are version 2, an HMAC under AUDIT_HMAC_KEY, which the database never sees. The application
role loses INSERT on the audit tables (granted again by nothing: `db upgrade` revokes it in
ensure_app_role) and appends through audit_append_tenant / audit_append_platform, SECURITY
DEFINER functions owned by the migration role. They take the chain's lock and refuse an event
whose seq and prev_hash do not follow the chain's last event, so the application can neither
rewrite nor reorder the chain; row-level security still binds the tenant chain to the
transaction's tenant, since the owner role is subject to FORCE RLS.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-25 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ARGS = (
    "p_id uuid, p_tenant_id uuid, p_seq bigint, p_prev_hash text, p_occurred_at timestamptz, "
    "p_action text, p_actor_user_id uuid, p_actor_api_key_id uuid, p_subject_type text, "
    "p_subject_id text, p_ip text, p_user_agent text, p_request_id text, p_details jsonb, "
    "p_hash text"
)
_SIGNATURE = (
    "uuid, uuid, bigint, text, timestamptz, text, uuid, uuid, text, text, text, text, text, "
    "jsonb, text"
)
_COLUMNS = (
    "id, seq, prev_hash, occurred_at, action, actor_user_id, actor_api_key_id, subject_type, "
    "subject_id, ip, user_agent, request_id, details, hash, mac_version"
)
_VALUES = (
    "p_id, p_seq, p_prev_hash, p_occurred_at, p_action, p_actor_user_id, p_actor_api_key_id, "
    "p_subject_type, p_subject_id, p_ip, p_user_agent, p_request_id, p_details, p_hash, 2"
)


def _function(name: str, table: str, lock_key: str, scope: str, extra_columns: str,
              extra_values: str) -> str:  # fmt: skip
    return f"""
CREATE FUNCTION {name}({_ARGS}) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock({lock_key});
    SELECT seq, hash INTO last_seq, last_hash FROM {table} {scope} ORDER BY seq DESC LIMIT 1;
    IF p_seq <> coalesce(last_seq, 0) + 1
       OR p_prev_hash <> coalesce(last_hash, repeat('0', 64)) THEN
        RAISE EXCEPTION 'audit chain: event % does not follow event %', p_seq, last_seq
            USING ERRCODE = '40001';
    END IF;
    INSERT INTO {table} ({extra_columns}{_COLUMNS}) VALUES ({extra_values}{_VALUES});
END
$$"""


def upgrade() -> None:
    postgres = op.get_context().dialect.name == "postgresql"
    for table in ("audit_events", "platform_audit_events"):
        # Existing rows are legacy (1); new ones always say their version (SQLite cannot drop a
        # column default, and keeps it unused).
        op.add_column(
            table,
            sa.Column("mac_version", sa.SmallInteger(), nullable=False, server_default="1"),
        )
        if postgres:
            op.alter_column(table, "mac_version", server_default=None)
    if not postgres:
        return
    # The same lock keys as audit_chain_head's (migration 0027), which the application calls.
    op.execute(
        _function(
            "audit_append_tenant", "audit_events",
            "hashtextextended('audit:' || p_tenant_id::text, 0)",
            "WHERE tenant_id = p_tenant_id", "tenant_id, ", "p_tenant_id, ",
        )
    )  # fmt: skip
    op.execute(
        _function(
            "audit_append_platform", "platform_audit_events",
            "hashtextextended('audit:platform', 0)", "", "", "",
        )
    )  # fmt: skip
    for name in ("audit_append_tenant", "audit_append_platform"):
        op.execute(f"REVOKE ALL ON FUNCTION {name}({_SIGNATURE}) FROM PUBLIC")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for name in ("audit_append_tenant", "audit_append_platform"):
            op.execute(f"DROP FUNCTION IF EXISTS {name}({_SIGNATURE})")
    for table in ("audit_events", "platform_audit_events"):
        op.drop_column(table, "mac_version")

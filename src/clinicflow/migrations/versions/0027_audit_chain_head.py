"""audit_chain_head: an append's lock and the chain's last link in one round trip.

An audited write took the chain's advisory lock, then read the chain's last event, then
appended through audit_append_* (0020): three statements. This function takes the same lock
(the key 0020's functions and the application use) and returns the last event's seq and hash,
or NULLs for an empty chain. It runs as the caller (SECURITY INVOKER), so row-level security
still binds the tenant chain to the transaction's tenant. It is VOLATILE, so its SELECT takes a
snapshot after the lock is granted and sees the append of the transaction that held it; the
append still re-checks the link under the lock.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02 20:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = """
CREATE FUNCTION audit_chain_head(p_tenant_id uuid, OUT last_seq bigint, OUT last_hash text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_tenant_id IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('audit:platform', 0));
        SELECT seq, hash INTO last_seq, last_hash
            FROM platform_audit_events ORDER BY seq DESC LIMIT 1;
    ELSE
        PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || p_tenant_id::text, 0));
        SELECT seq, hash INTO last_seq, last_hash
            FROM audit_events WHERE tenant_id = p_tenant_id ORDER BY seq DESC LIMIT 1;
    END IF;
END
$$"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_chain_head(uuid)")

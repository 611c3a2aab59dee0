"""user_practices(user): the practices one user belongs to, with role ("my practices").

Memberships are a tenant table under FORCE RLS, which binds the owner role too, so no query sees
them across practices. This SECURITY DEFINER function walks the practices in one round trip,
setting app.tenant_id for each as the application would, and returns only the given user's
memberships; it restores the caller's tenant setting when done. It gives the application role
nothing it could not already read practice by practice.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-25 03:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(
        """
CREATE FUNCTION user_practices(p_user_id uuid)
RETURNS TABLE (tenant_id uuid, role text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    caller_tenant text := current_setting('app.tenant_id', true);
    practice record;
BEGIN
    FOR practice IN SELECT id FROM tenants WHERE deleted_at IS NULL ORDER BY id LOOP
        PERFORM set_config('app.tenant_id', practice.id::text, true);
        RETURN QUERY
            SELECT m.tenant_id, m.role::text FROM memberships m WHERE m.user_id = p_user_id;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(caller_tenant, ''), true);
END
$$"""
    )
    op.execute("REVOKE ALL ON FUNCTION user_practices(uuid) FROM PUBLIC")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS user_practices(uuid)")

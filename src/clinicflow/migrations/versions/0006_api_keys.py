"""API keys for chatbots and automation (RLS).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 13:34:34.907912
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models
from clinicflow.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint(
            "tenant_id", "secret_hash", name=op.f("uq_api_keys_tenant_id_secret_hash")
        ),
    )

    enable_tenant_rls("api_keys")


def downgrade() -> None:
    disable_tenant_rls("api_keys")
    op.drop_table("api_keys")

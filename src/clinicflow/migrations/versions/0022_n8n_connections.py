"""A practice's n8n connection (base URL and its API key, encrypted) for automation metrics.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-25 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models
from clinicflow.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "n8n_connections",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("api_key_key_id", sa.String(length=32), nullable=False),
        sa.Column("api_key", sa.LargeBinary(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column(
            "updated_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_n8n_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_n8n_connections")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_n8n_connections_tenant_id")),
    )  # fmt: skip
    enable_tenant_rls("n8n_connections")


def downgrade() -> None:
    disable_tenant_rls("n8n_connections")
    op.drop_table("n8n_connections")

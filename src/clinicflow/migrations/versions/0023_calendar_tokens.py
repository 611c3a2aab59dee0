"""Calendar-feed tokens, one per member, stored hashed (RLS).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-25 03:25:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models
from clinicflow.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_tokens",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_calendar_tokens_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_calendar_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_calendar_tokens")),
        sa.UniqueConstraint(
            "tenant_id", "token_hash", name=op.f("uq_calendar_tokens_tenant_id_token_hash")
        ),
        sa.UniqueConstraint(
            "tenant_id", "user_id", name=op.f("uq_calendar_tokens_tenant_id_user_id")
        ),
    )
    enable_tenant_rls("calendar_tokens")


def downgrade() -> None:
    disable_tenant_rls("calendar_tokens")
    op.drop_table("calendar_tokens")

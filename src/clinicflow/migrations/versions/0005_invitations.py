"""Account tokens (password reset, e-mail verification) and invitations (RLS).

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-24 13:09:22.320384
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models
from clinicflow.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "owner",
                "assistant",
                "viewer",
                name="invitation_role",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_user_id", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invitations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invitations")),
        sa.UniqueConstraint(
            "tenant_id", "token_hash", name=op.f("uq_invitations_tenant_id_token_hash")
        ),
    )
    op.create_table(
        "account_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_account_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    op.create_index(op.f("ix_account_tokens_user_id"), "account_tokens", ["user_id"], unique=False)

    enable_tenant_rls("invitations")


def downgrade() -> None:
    disable_tenant_rls("invitations")
    op.drop_index(op.f("ix_account_tokens_user_id"), table_name="account_tokens")
    op.drop_table("account_tokens")
    op.drop_table("invitations")

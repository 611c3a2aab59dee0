"""Durable outbox (platform, payload encrypted); notifications and webhooks (tenant, RLS).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-25 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models
from clinicflow.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = clinicflow.core.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column(
            "available_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "lease_expires_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            clinicflow.core.models.UTCDateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("payload_key_id", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    op.create_index(
        op.f("ix_outbox_messages_status_available_at"),
        "outbox_messages",
        ["status", "available_at"],
        unique=False,
    )

    op.create_table(
        "notifications",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=2048), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("event_type", sa.String(length=40), nullable=True),
        sa.Column("webhook_id", sa.Uuid(), nullable=True),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("scheduled_for", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notifications_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_notifications")),
    )
    for columns in (["appointment_id"], ["created_at"], ["webhook_id"]):
        op.create_index(
            op.f(f"ix_notifications_tenant_id_{columns[0]}"),
            "notifications",
            ["tenant_id", *columns],
            unique=False,
        )
    enable_tenant_rls("notifications")
    op.create_table(
        "webhooks",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret_key_id", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_webhooks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_webhooks")),
    )
    enable_tenant_rls("webhooks")


def downgrade() -> None:
    disable_tenant_rls("webhooks")
    op.drop_table("webhooks")
    disable_tenant_rls("notifications")
    for column in ("webhook_id", "created_at", "appointment_id"):
        op.drop_index(op.f(f"ix_notifications_tenant_id_{column}"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_outbox_messages_status_available_at"), table_name="outbox_messages")
    op.drop_table("outbox_messages")

"""Financial entries (RLS).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 13:53:00.251262
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models
from clinicflow.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "financial_entries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "income",
                "expense",
                name="entry_kind",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("paid_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("deleted_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            clinicflow.core.models.UTCDateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            clinicflow.core.models.UTCDateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "appointment_id"],
            ["appointments.tenant_id", "appointments.id"],
            name=op.f("fk_financial_entries_tenant_id_appointment_id_appointments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "patient_id"],
            ["patients.tenant_id", "patients.id"],
            name=op.f("fk_financial_entries_tenant_id_patient_id_patients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_financial_entries_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_financial_entries")),
    )
    op.create_index(
        "ix_financial_entries_tenant_id_due_date",
        "financial_entries",
        ["tenant_id", "due_date"],
        unique=False,
    )

    enable_tenant_rls("financial_entries")


def downgrade() -> None:
    disable_tenant_rls("financial_entries")
    op.drop_index("ix_financial_entries_tenant_id_due_date", table_name="financial_entries")
    op.drop_table("financial_entries")

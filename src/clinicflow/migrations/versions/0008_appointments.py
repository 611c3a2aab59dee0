"""Appointments, status history, and the no-double-booking exclusion constraint (RLS).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 13:48:56.225215
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models
from clinicflow.core.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "scheduled",
                "confirmed",
                "arrived",
                "completed",
                "cancelled",
                "no_show",
                name="appointment_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("location", sa.String(length=300), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("allow_overlap", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
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
            ["professional_id"],
            ["users.id"],
            name=op.f("fk_appointments_professional_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "patient_id"],
            ["patients.tenant_id", "patients.id"],
            name=op.f("fk_appointments_tenant_id_patient_id_patients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_appointments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_appointments")),
    )
    op.create_index(
        "ix_appointments_agenda",
        "appointments",
        ["tenant_id", "professional_id", "start_at"],
        unique=False,
    )
    op.create_index(
        "ix_appointments_tenant_id_patient_id",
        "appointments",
        ["tenant_id", "patient_id"],
        unique=False,
    )
    op.create_table(
        "appointment_status_changes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column(
            "from_status",
            sa.Enum(
                "scheduled",
                "confirmed",
                "arrived",
                "completed",
                "cancelled",
                "no_show",
                name="from_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_status",
            sa.Enum(
                "scheduled",
                "confirmed",
                "arrived",
                "completed",
                "cancelled",
                "no_show",
                name="to_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.Column("changed_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "appointment_id"],
            ["appointments.tenant_id", "appointments.id"],
            name=op.f("fk_appointment_status_changes_tenant_id_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_appointment_status_changes_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_appointment_status_changes")),
    )
    op.create_index(
        "ix_appointment_status_changes_appointment",
        "appointment_status_changes",
        ["tenant_id", "appointment_id"],
        unique=False,
    )

    if op.get_context().dialect.name == "postgresql":
        # Two active appointments of one professional never overlap, even under concurrency.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE appointments ADD CONSTRAINT ex_appointments_no_overlap "
            "EXCLUDE USING gist (tenant_id WITH =, professional_id WITH =, "
            "tstzrange(start_at, end_at, '[)') WITH &&) "
            "WHERE (status NOT IN ('cancelled', 'no_show') AND NOT allow_overlap)"
        )
    for table in ("appointments", "appointment_status_changes"):
        enable_tenant_rls(table)


def downgrade() -> None:
    for table in ("appointments", "appointment_status_changes"):
        disable_tenant_rls(table)
    op.drop_index(
        "ix_appointment_status_changes_appointment", table_name="appointment_status_changes"
    )
    op.drop_table("appointment_status_changes")
    op.drop_index("ix_appointments_tenant_id_patient_id", table_name="appointments")
    op.drop_index("ix_appointments_agenda", table_name="appointments")
    op.drop_table("appointments")

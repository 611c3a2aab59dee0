"""Recurring series: appointments.series_id.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 13:57:14.223291
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("appointments", sa.Column("series_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_appointments_tenant_id_series_id",
        "appointments",
        ["tenant_id", "series_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_appointments_tenant_id_series_id", table_name="appointments")
    op.drop_column("appointments", "series_id")

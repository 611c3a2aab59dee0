"""Status history names the API key that made a change (bots, n8n, /mcp).

Revision ID: 0017
Revises: 0011
Create Date: 2026-11-25 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "appointment_status_changes",
        sa.Column("changed_by_api_key_id", sa.Uuid(), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("appointment_status_changes", "changed_by_api_key_id")

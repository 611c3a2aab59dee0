"""API keys record when they were rotated: a key is rotated once (its successor is rotated
next). Keys rotated before this revision have no time recorded and may be rotated once more.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("rotated_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("api_keys", "rotated_at")

"""API keys can be suspended: a password reset suspends the keys created before it until the
owner confirms them (an account pre-claimed by someone else keeps no working key).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.core.models

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("suspended_at", clinicflow.core.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("api_keys", "suspended_at")

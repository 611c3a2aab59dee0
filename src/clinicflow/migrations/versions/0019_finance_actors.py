"""Finance entries name who created and who last changed them (user ids, like appointments).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25 03:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("financial_entries", sa.Column("created_by", sa.Uuid(), nullable=True))
    op.add_column("financial_entries", sa.Column("updated_by", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("financial_entries", "updated_by")
    op.drop_column("financial_entries", "created_by")

"""Outbox messages name the practice whose notification they mirror, outside the encrypted
payload: a message whose payload cannot be opened (a missing key, a corrupt row) now shows
its failure on the practice's notification instead of leaving it pending. Messages queued
before this revision keep naming it inside the payload only.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 12:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_messages", sa.Column("practice_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox_messages", "practice_id")

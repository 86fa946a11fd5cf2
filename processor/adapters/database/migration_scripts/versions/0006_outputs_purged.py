"""Outbox retention: ``bulk_operations.outputs_purged_at``, when retention deleted (some of) the outbox
files of an operation, so that the history says so instead of linking to files that are gone.

A nullable column added on both databases without rebuilding the table (SQLite's ``ADD COLUMN``): the
expression indexes of 0005 stay as they are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "bulk_operations", sa.Column("outputs_purged_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # SQLite drops a column in place (3.35+) only when nothing indexes it; nothing does.
    op.drop_column("bulk_operations", "outputs_purged_at")

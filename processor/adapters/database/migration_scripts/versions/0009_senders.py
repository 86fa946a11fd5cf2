"""Senders (issue 14): ``bulk_operations.sender``, the configured sender whose file an operation read
(``[[senders]]``), recorded when the file is registered so that recovery reads it the same way; and an
index for ``wardbulk ops list --sender`` (a page of one sender's operations is one index range).

A nullable column added in place on both databases (SQLite's ``ADD COLUMN``): no rebuild.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bulk_operations", sa.Column("sender", sa.String(64), nullable=True))
    op.create_index("ix_bulk_operations_sender_id", "bulk_operations", ["sender", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bulk_operations_sender_id", table_name="bulk_operations")
    op.drop_column("bulk_operations", "sender")

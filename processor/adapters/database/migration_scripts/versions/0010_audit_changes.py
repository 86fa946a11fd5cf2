"""The audit trail (issue 14): ``audit_changes``, one row per stored value a file changed (upsert mode
of import_patients), with the operation and line that changed it and the old and new values; read by
``wardbulk audit patient``.

A new table on both databases: nothing existing is rebuilt.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bulk_operation_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("record_key", sa.String(64), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("column_name", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bulk_operation_id"], ["bulk_operations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_changes_record_key_id", "audit_changes", ["record_key", "id"], unique=False)
    op.create_index(
        "ix_audit_changes_bulk_operation_id", "audit_changes", ["bulk_operation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_audit_changes_bulk_operation_id", table_name="audit_changes")
    op.drop_index("ix_audit_changes_record_key_id", table_name="audit_changes")
    op.drop_table("audit_changes")

"""File claims (a file's bytes are applied once per operation type) and operation heartbeats.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "file_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_type", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"], ["bulk_operations.id"], name=op.f("fk_file_claims_operation_id_bulk_operations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_claims")),
        sa.UniqueConstraint("operation_id", name=op.f("uq_file_claims_operation_id")),
        sa.UniqueConstraint("operation_type", "sha256", name=op.f("uq_file_claims_operation_type_sha256")),
    )
    with op.batch_alter_table("bulk_operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bulk_operations", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
    op.drop_table("file_claims")

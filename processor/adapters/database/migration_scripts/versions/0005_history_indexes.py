"""History indexes: ``ops list``, ``ops show`` and ``ops stats`` at millions of operations (issue 13).

- ``(operation_type, id)``, ``(status, id)``, ``(created_at, id)``: a page of the history (newest first
  by id, below a given id) with a type, status or date filter reads one range of one index.
- ``(operation_type, status, total_records, successful_records, created_at)``: the statistics' counts
  and record sums per type and status, by date or not, come from this index alone, not from the table.
- ``(operation_type, duration, status, created_at)`` and ``(duration, status, created_at)``: a median or
  p95 is one walk along an index in duration order (per type, or over all), the filters checked in it,
  instead of sorting every operation. The duration is an expression: on SQLite the exact microseconds
  between the stored texts, divided once; on PostgreSQL the interval's seconds. SQLite uses such an index
  only for the very same expression, so this SQL must stay equal to ``OperationDuration`` in models.py.
  PostgreSQL reads an expression from an index alone only when the index holds the expression's columns,
  hence ``INCLUDE (started_at, completed_at)``.

Neither SQLite nor SQLAlchemy reflects an index on an expression: a later batch rebuild of
``bulk_operations`` on SQLite (as 0004 does) must create the two duration indexes again afterwards.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of what durations.OperationDuration compiles to (a migration does not follow the models).
SQLITE_DURATION = (
    "(((CAST(strftime('%s', substr(completed_at, 1, 19)) AS INTEGER)"
    " - CAST(strftime('%s', substr(started_at, 1, 19)) AS INTEGER)) * 1000000"
    " + CAST(substr(substr(completed_at, 21) || '000000', 1, 6) AS INTEGER)"
    " - CAST(substr(substr(started_at, 21) || '000000', 1, 6) AS INTEGER)) / 1000000.0)"
)
POSTGRESQL_DURATION = "EXTRACT(epoch FROM completed_at - started_at)"
PLAIN_INDEXES = (
    ("ix_bulk_operations_operation_type_id", ["operation_type", "id"]),
    ("ix_bulk_operations_status_id", ["status", "id"]),
    ("ix_bulk_operations_created_at_id", ["created_at", "id"]),
    (
        "ix_bulk_operations_type_status_totals",
        ["operation_type", "status", "total_records", "successful_records", "created_at"],
    ),
)
DURATION_INDEXES = ("ix_bulk_operations_type_duration", "ix_bulk_operations_duration")
INCLUDED = ["started_at", "completed_at"]  # PostgreSQL only: the columns the duration is computed from


def _duration() -> sa.TextClause:
    sqlite = op.get_bind().dialect.name == "sqlite"
    return sa.text(SQLITE_DURATION if sqlite else POSTGRESQL_DURATION)


def upgrade() -> None:
    for name, columns in PLAIN_INDEXES:
        op.create_index(name, "bulk_operations", columns, unique=False)
    op.create_index(
        "ix_bulk_operations_type_duration",
        "bulk_operations",
        ["operation_type", _duration(), "status", "created_at"],
        unique=False,
        postgresql_include=INCLUDED,
    )
    op.create_index(
        "ix_bulk_operations_duration",
        "bulk_operations",
        [_duration(), "status", "created_at"],
        unique=False,
        postgresql_include=INCLUDED,
    )


def downgrade() -> None:
    for name in (*DURATION_INDEXES, *(name for name, _ in reversed(PLAIN_INDEXES))):
        op.drop_index(name, table_name="bulk_operations")

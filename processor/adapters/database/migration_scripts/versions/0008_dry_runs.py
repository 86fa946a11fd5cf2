"""Dry runs (issue 14): ``bulk_operations.dry_run`` and the status ``validated``.

A dry run reads and checks a file exactly as a real run does, against the ward database, writes the
same outbox files, and applies nothing; it ends ``validated`` (or ``failed``). ``dry_run`` is recorded
when the operation is registered, so that recovery resumes an interrupted dry run as a dry run: never
as a real run that would apply the file.

SQLite cannot change a CHECK constraint in place: the table is rebuilt (a copy of every operation; at
millions of operations this takes a while, once). The rebuild drops what SQLite cannot carry over, which
is made again afterwards exactly as before: the ``created_at DESC`` indexes of 0001 (as 0004 does), the
duration indexes on expressions of 0005, and the tally triggers of 0007 (the tallies themselves stay
right: copying rows into the new table fires no trigger, and neither does dropping the old one).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES_BEFORE = ("pending", "processing", "completed", "failed")
STATUSES = (*STATUSES_BEFORE, "validated")
CHECK = "ck_bulk_operations_status_known"


def _sibling(name: str) -> ModuleType:
    """An earlier migration of this folder, for the statements it made (one text for both)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_of(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(value) for value in values)})"


def _rebuild(values: tuple[str, ...], with_column: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("bulk_operations", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), _one_of(values))
        if with_column:
            batch_op.add_column(sa.Column("dry_run", sa.Boolean(), nullable=False, server_default=sa.false()))
        else:
            batch_op.drop_column("dry_run")
    if sqlite:
        _restore_what_sqlite_dropped()


def _restore_what_sqlite_dropped() -> None:
    history_indexes = _sibling("0005_history_indexes")
    for index, column in (
        ("ix_bulk_operations_status_created_at", "status"),
        ("ix_bulk_operations_initiated_by_created_at", "initiated_by_id"),
    ):
        op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute(f"CREATE INDEX {index} ON bulk_operations ({column}, created_at DESC)")
    duration = history_indexes.SQLITE_DURATION
    for index, columns in (
        ("ix_bulk_operations_type_duration", f"operation_type, {duration}, status, created_at"),
        ("ix_bulk_operations_duration", f"{duration}, status, created_at"),
    ):
        op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute(f"CREATE INDEX {index} ON bulk_operations ({columns})")
    for trigger in ("operation_tallies_insert", "operation_tallies_update", "operation_tallies_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    _sibling("0007_operation_tallies").create_triggers()


def upgrade() -> None:
    _rebuild(STATUSES, with_column=True)


def downgrade() -> None:
    kept = sa.text("SELECT count(*) FROM bulk_operations WHERE dry_run OR status = 'validated'")
    if op.get_bind().execute(kept).scalar_one():
        raise RuntimeError(
            "dry runs are recorded: downgrading below 0008 would lose them; delete them first "
            "(DELETE FROM bulk_operations WHERE dry_run) if that is intended"
        )
    _rebuild(STATUSES_BEFORE, with_column=False)

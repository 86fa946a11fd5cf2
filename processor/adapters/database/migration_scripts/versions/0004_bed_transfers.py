"""Bed transfers (transfer_patients, HL7 ADT A02): the bed_transfers table, the operation type and the
``transfer`` notification kind allowed by their CHECK constraints.

On SQLite a CHECK constraint changes only by rebuilding its table (batch mode). The runner turns foreign
keys off for a migration (``migrations.py``: dropping the old ``bulk_operations`` would otherwise fail on
every row that references it) and checks them all before committing. Batch mode reflects the indexes
on ``created_at DESC`` without their order, so they are made again after the rebuild.

The downgrade refuses while any transfer is recorded: the older schema cannot say which beds a moved
stay held, and wardbulk deletes no history to make it fit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPERATION_TYPES_BEFORE = (
    "sync_beds",
    "import_patients",
    "bulk_assignment",
    "bulk_discharge",
    "export_report",
    "export_patients",
)
OPERATION_TYPES = (*OPERATION_TYPES_BEFORE[:3], "transfer_patients", *OPERATION_TYPES_BEFORE[3:])
NOTIFICATION_KINDS_BEFORE = ("admission", "discharge")
NOTIFICATION_KINDS = ("admission", "transfer", "discharge")
# The history page's indexes on expressions, which SQLite's batch rebuild cannot carry over.
HISTORY_INDEXES = (
    ("ix_bulk_operations_status_created_at", "status"),
    ("ix_bulk_operations_initiated_by_created_at", "initiated_by_id"),
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _allow(table: str, name: str, column: str, values: tuple[str, ...]) -> None:
    """Replace the CHECK constraint ``name`` of ``table`` by one allowing ``values`` in ``column``."""
    with op.batch_alter_table(table, recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(name), type_="check")
        batch_op.create_check_constraint(op.f(name), _one_of(column, values))
    if table == "bulk_operations" and op.get_bind().dialect.name == "sqlite":
        _restore_history_indexes()


def _restore_history_indexes() -> None:
    """SQLite's batch rebuild reflects ``created_at DESC`` as plain ``created_at``: make them as 0001 did."""
    for index, column_name in HISTORY_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute(f"CREATE INDEX {index} ON bulk_operations ({column_name}, created_at DESC)")


def upgrade() -> None:
    op.create_table(
        "bed_transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("from_bed_id", sa.Integer(), nullable=False),
        sa.Column("to_bed_id", sa.Integer(), nullable=False),
        sa.Column("transferred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("bulk_operation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["admission_id"],
            ["patient_admissions.id"],
            name=op.f("fk_bed_transfers_admission_id_patient_admissions"),
        ),
        sa.ForeignKeyConstraint(
            ["from_bed_id"], ["ward_beds.id"], name=op.f("fk_bed_transfers_from_bed_id_ward_beds")
        ),
        sa.ForeignKeyConstraint(
            ["to_bed_id"], ["ward_beds.id"], name=op.f("fk_bed_transfers_to_bed_id_ward_beds")
        ),
        sa.ForeignKeyConstraint(
            ["bulk_operation_id"],
            ["bulk_operations.id"],
            name=op.f("fk_bed_transfers_bulk_operation_id_bulk_operations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bed_transfers")),
    )
    op.create_index(
        "ix_bed_transfers_admission_id_transferred_at", "bed_transfers", ["admission_id", "transferred_at"]
    )
    op.create_index(
        "ix_bed_transfers_transferred_at_covering",
        "bed_transfers",
        ["transferred_at", "admission_id", "from_bed_id"],
    )
    _allow("bulk_operations", "ck_bulk_operations_operation_type_known", "operation_type", OPERATION_TYPES)
    _allow("patient_notifications", "ck_patient_notifications_kind_known", "kind", NOTIFICATION_KINDS)


def _refuse_while_transfers_exist() -> None:
    count = sa.text(
        "SELECT (SELECT count(*) FROM bed_transfers)"
        " + (SELECT count(*) FROM bulk_operations WHERE operation_type = 'transfer_patients')"
        " + (SELECT count(*) FROM patient_notifications WHERE kind = 'transfer')"
    )
    if op.get_bind().execute(count).scalar_one():
        raise RuntimeError(
            "cannot downgrade below 0004 while transfers are recorded (bed_transfers, transfer_patients "
            "operations or transfer notifications): the older schema cannot hold them"
        )


def downgrade() -> None:
    _refuse_while_transfers_exist()
    _allow("patient_notifications", "ck_patient_notifications_kind_known", "kind", NOTIFICATION_KINDS_BEFORE)
    _allow(
        "bulk_operations", "ck_bulk_operations_operation_type_known", "operation_type", OPERATION_TYPES_BEFORE
    )
    op.drop_index("ix_bed_transfers_transferred_at_covering", table_name="bed_transfers")
    op.drop_index("ix_bed_transfers_admission_id_transferred_at", table_name="bed_transfers")
    op.drop_table("bed_transfers")

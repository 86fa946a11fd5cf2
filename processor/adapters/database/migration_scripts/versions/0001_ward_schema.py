"""The ward schema: the seed's tables, BulkOperation with the file pipeline's fields, scheduled-run claims.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_name", sa.String(length=200), nullable=False),
        sa.Column("period_key", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("output_file", sa.String(length=1024), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_runs")),
        sa.UniqueConstraint(
            "schedule_name", "period_key", name=op.f("uq_scheduled_runs_schedule_name_period_key")
        ),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("first_name", sa.String(length=150), nullable=False),
        sa.Column("last_name", sa.String(length=150), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "wards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wards")),
        sa.UniqueConstraint("code", name=op.f("uq_wards_code")),
    )
    op.create_table(
        "bulk_operations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("initiated_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("input_file", sa.String(length=1024), nullable=True),
        sa.Column("output_file", sa.String(length=1024), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("total_records", sa.Integer(), nullable=False),
        sa.Column("processed_records", sa.Integer(), nullable=False),
        sa.Column("successful_records", sa.Integer(), nullable=False),
        sa.Column("failed_records", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "operation_type IN ('import_patients', 'export_patients', 'bulk_discharge', 'bulk_assignment', 'export_report', 'sync_beds')",
            name=op.f("ck_bulk_operations_operation_type_known"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_bulk_operations_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["initiated_by_id"], ["users.id"], name=op.f("fk_bulk_operations_initiated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_operations")),
    )
    with op.batch_alter_table("bulk_operations", schema=None) as batch_op:
        batch_op.create_index("ix_bulk_operations_type_sha256", ["operation_type", "sha256"], unique=False)
        # The seed's indexes: the history page lists newest first per status and per user.
        batch_op.create_index(
            "ix_bulk_operations_status_created_at",
            ["status", sa.text("created_at DESC")],
            unique=False,
        )
        batch_op.create_index(
            "ix_bulk_operations_initiated_by_created_at",
            ["initiated_by_id", sa.text("created_at DESC")],
            unique=False,
        )

    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mrn", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("gender", sa.String(length=1), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bulk_operation_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "gender IS NULL OR gender IN ('M', 'F', 'O', 'U')",
            name=op.f("ck_patients_gender_known"),
        ),
        sa.ForeignKeyConstraint(
            ["bulk_operation_id"],
            ["bulk_operations.id"],
            name=op.f("fk_patients_bulk_operation_id_bulk_operations"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_patients_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("mrn", name=op.f("uq_patients_mrn")),
        sa.UniqueConstraint("user_id", name=op.f("uq_patients_user_id")),
    )
    op.create_table(
        "caregivers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_caregivers_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caregivers")),
    )
    with op.batch_alter_table("caregivers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_caregivers_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "ward_beds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("ward_id", sa.Integer(), nullable=False),
        sa.Column("bed_number", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_patient_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(status = 'occupied') = (current_patient_id IS NOT NULL)",
            name=op.f("ck_ward_beds_occupied_iff_patient"),
        ),
        sa.CheckConstraint(
            "status IN ('available', 'occupied', 'maintenance')",
            name=op.f("ck_ward_beds_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["current_patient_id"],
            ["patients.id"],
            name=op.f("fk_ward_beds_current_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(["ward_id"], ["wards.id"], name=op.f("fk_ward_beds_ward_id_wards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ward_beds")),
        sa.UniqueConstraint("code", name=op.f("uq_ward_beds_code")),
        sa.UniqueConstraint("current_patient_id", name=op.f("uq_ward_beds_current_patient_id")),
    )
    with op.batch_alter_table("ward_beds", schema=None) as batch_op:
        batch_op.create_index("ix_ward_beds_ward_id_status", ["ward_id", "status"], unique=False)

    op.create_table(
        "patient_admissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("bed_id", sa.Integer(), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("chief_complaint", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("bulk_operation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bed_id"], ["ward_beds.id"], name=op.f("fk_patient_admissions_bed_id_ward_beds")
        ),
        sa.ForeignKeyConstraint(
            ["bulk_operation_id"],
            ["bulk_operations.id"],
            name=op.f("fk_patient_admissions_bulk_operation_id_bulk_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_admissions_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_admissions")),
    )
    with op.batch_alter_table("patient_admissions", schema=None) as batch_op:
        batch_op.create_index("ix_patient_admissions_admitted_at", ["admitted_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_admissions_bed_id"), ["bed_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_admissions_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            "uq_patient_admissions_active_bed",
            ["bed_id"],
            unique=True,
            sqlite_where=sa.text("is_active"),
            postgresql_where=sa.text("is_active"),
        )
        batch_op.create_index(
            "uq_patient_admissions_active_patient",
            ["patient_id"],
            unique=True,
            sqlite_where=sa.text("is_active"),
            postgresql_where=sa.text("is_active"),
        )

    op.create_table(
        "patient_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("caregiver_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bulk_operation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('admission', 'discharge')", name=op.f("ck_patient_notifications_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'skipped')", name=op.f("ck_patient_notifications_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["bulk_operation_id"],
            ["bulk_operations.id"],
            name=op.f("fk_patient_notifications_bulk_operation_id_bulk_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["caregiver_id"],
            ["caregivers.id"],
            name=op.f("fk_patient_notifications_caregiver_id_caregivers"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_notifications_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_notifications")),
    )
    with op.batch_alter_table("patient_notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_notifications_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "patient_discharges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admission_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discharge_status", sa.String(length=32), nullable=False),
        sa.Column("discharge_notes", sa.Text(), nullable=True),
        sa.Column("bulk_operation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "discharge_status IN ('recovered', 'transferred', 'against_medical_advice', 'deceased', 'other')",
            name=op.f("ck_patient_discharges_discharge_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["admission_id"],
            ["patient_admissions.id"],
            name=op.f("fk_patient_discharges_admission_id_patient_admissions"),
        ),
        sa.ForeignKeyConstraint(
            ["bulk_operation_id"],
            ["bulk_operations.id"],
            name=op.f("fk_patient_discharges_bulk_operation_id_bulk_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_discharges_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_discharges")),
        sa.UniqueConstraint("admission_id", name=op.f("uq_patient_discharges_admission_id")),
    )
    with op.batch_alter_table("patient_discharges", schema=None) as batch_op:
        batch_op.create_index("ix_patient_discharges_discharged_at", ["discharged_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_discharges_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patient_discharges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_discharges_patient_id"))
        batch_op.drop_index("ix_patient_discharges_discharged_at")

    op.drop_table("patient_discharges")
    with op.batch_alter_table("patient_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_notifications_patient_id"))

    op.drop_table("patient_notifications")
    with op.batch_alter_table("patient_admissions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_patient_admissions_active_patient",
            sqlite_where=sa.text("is_active"),
            postgresql_where=sa.text("is_active"),
        )
        batch_op.drop_index(
            "uq_patient_admissions_active_bed",
            sqlite_where=sa.text("is_active"),
            postgresql_where=sa.text("is_active"),
        )
        batch_op.drop_index(batch_op.f("ix_patient_admissions_patient_id"))
        batch_op.drop_index(batch_op.f("ix_patient_admissions_bed_id"))
        batch_op.drop_index("ix_patient_admissions_admitted_at")

    op.drop_table("patient_admissions")
    with op.batch_alter_table("ward_beds", schema=None) as batch_op:
        batch_op.drop_index("ix_ward_beds_ward_id_status")

    op.drop_table("ward_beds")
    with op.batch_alter_table("caregivers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caregivers_patient_id"))

    op.drop_table("caregivers")
    op.drop_table("patients")
    with op.batch_alter_table("bulk_operations", schema=None) as batch_op:
        batch_op.drop_index("ix_bulk_operations_type_sha256")
        batch_op.drop_index("ix_bulk_operations_status_created_at")
        batch_op.drop_index("ix_bulk_operations_initiated_by_created_at")

    op.drop_table("bulk_operations")
    op.drop_table("wards")
    op.drop_table("users")
    op.drop_table("scheduled_runs")

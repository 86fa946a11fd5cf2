"""Report indexes: current admissions by admission time; the discharges' period index covers the reports.

- ``ix_patient_admissions_active_admitted_at`` (partial, ``WHERE is_active``): the patient list with a
  date filter read every admission ever made in those dates to find the few current ones.
- ``ix_patient_discharges_discharged_at_covering``: the admission_discharge and bed_utilization reports
  read the discharges of a period; with the admission and the status in the index they no longer visit
  each discharge's row (a random read per discharge). It replaces the index on ``discharged_at`` alone,
  which it serves as well.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_patient_admissions_active_admitted_at",
        "patient_admissions",
        ["admitted_at"],
        unique=False,
        sqlite_where=sa.text("is_active"),
        postgresql_where=sa.text("is_active"),
    )
    op.create_index(
        "ix_patient_discharges_discharged_at_covering",
        "patient_discharges",
        ["discharged_at", "admission_id", "discharge_status"],
        unique=False,
    )
    op.drop_index("ix_patient_discharges_discharged_at", table_name="patient_discharges")


def downgrade() -> None:
    op.create_index(
        "ix_patient_discharges_discharged_at", "patient_discharges", ["discharged_at"], unique=False
    )
    op.drop_index("ix_patient_discharges_discharged_at_covering", table_name="patient_discharges")
    op.drop_index("ix_patient_admissions_active_admitted_at", table_name="patient_admissions")

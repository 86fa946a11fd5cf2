"""The SQL of bulk_assignment: admissions inserted, their beds occupied by one conditional update."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, update

from processor.adapters.database.bulk import expect_changed, insert_rows, values_table
from processor.adapters.database.models import PatientAdmission, WardBed
from processor.core.operation_types import BedStatus
from processor.operations.bulk_assignment.ports import NewAdmission
from processor.operations.ward_sql import SqlWard


class SqlAssignmentStore(SqlWard):
    """bulk_assignment's store (``AssignmentStore``): the shared lookups, and admissions."""

    def admit(self, admissions: list[NewAdmission], operation_id: int, now: datetime) -> None:
        if not admissions:
            return
        chunk = values_table(
            self.connection,
            {"bed": Integer(), "patient": Integer()},
            [(a.bed_id, a.patient_id) for a in admissions],
        )
        occupy = (
            update(WardBed)
            .where(WardBed.id == chunk.c.bed, WardBed.status == BedStatus.AVAILABLE.value)
            .values(status=BedStatus.OCCUPIED.value, current_patient_id=chunk.c.patient, updated_at=now)
        )
        expect_changed(self.connection, occupy, len(admissions))
        insert_rows(
            self.connection,
            PatientAdmission,
            ("patient_id", "bed_id", "admitted_at", "reason", "chief_complaint"),
            ((a.patient_id, a.bed_id, a.admitted_at, a.reason, a.chief_complaint) for a in admissions),
            shared={"is_active": True, "bulk_operation_id": operation_id, "created_at": now},
        )

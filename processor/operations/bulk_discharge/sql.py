"""The SQL of bulk_discharge: admissions ended, beds freed, discharges inserted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, update

from processor.adapters.database.bulk import expect_changed, insert_rows, values_table
from processor.adapters.database.models import PatientAdmission, PatientDischarge, WardBed
from processor.core.operation_types import BedStatus
from processor.operations.bulk_discharge.ports import NewDischarge
from processor.operations.ward_sql import SqlWard


class SqlDischargeStore(SqlWard):
    """bulk_discharge's store (``DischargeStore``): the shared lookups, and discharges."""

    def discharge(self, discharges: list[NewDischarge], operation_id: int, now: datetime) -> None:
        if not discharges:
            return
        chunk = values_table(
            self.connection,
            {"admission": Integer(), "bed": Integer(), "patient": Integer()},
            [(d.admission_id, d.bed_id, d.patient_id) for d in discharges],
        )
        end_admission = (
            update(PatientAdmission)
            .where(PatientAdmission.id == chunk.c.admission, PatientAdmission.is_active.is_(True))
            .values(is_active=False)
        )
        expect_changed(self.connection, end_admission, len(discharges))
        release = (
            update(WardBed)
            .where(WardBed.id == chunk.c.bed, WardBed.current_patient_id == chunk.c.patient)
            .values(status=BedStatus.AVAILABLE.value, current_patient_id=None, updated_at=now)
        )
        expect_changed(self.connection, release, len(discharges))
        insert_rows(
            self.connection,
            PatientDischarge,
            ("admission_id", "patient_id", "discharged_at", "discharge_status", "discharge_notes"),
            (
                (d.admission_id, d.patient_id, d.discharged_at, d.discharge_status, d.discharge_notes)
                for d in discharges
            ),
            shared={"bulk_operation_id": operation_id, "created_at": now},
        )

"""The SQL of transfer_patients: its store (``TransferStore``), the shared lookups and the moves.

A chunk of transfers is three conditional ``UPDATE … FROM`` the chunk's rows and one insert: the old
beds released, the new beds occupied, the admissions pointed at them, the transfers recorded. Each
update names the state validation saw (the patient still in the old bed, the new bed still available,
the admission still active there); a changed-row count short of the chunk raises ``ConcurrentChange``,
so a bed taken by another daemon since validation never holds two patients.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Integer, func, select, update

from processor.adapters.database.bulk import expect_changed, insert_rows, is_among, values_table
from processor.adapters.database.models import PatientAdmission, WardBed
from processor.core.operation_types import BedStatus
from processor.operations.transfer_patients.ports import NewTransfer
from processor.operations.transfer_patients.tables import BedTransfer
from processor.operations.ward_sql import SqlWard


class SqlTransferStore(SqlWard):
    """transfer_patients' store: the shared lookups, each stay's last move, and the moves."""

    def last_transfers(self, admission_ids: Iterable[int]) -> dict[int, datetime]:
        return last_transfers(self.connection, admission_ids)

    def transfer(self, transfers: list[NewTransfer], operation_id: int, now: datetime) -> None:
        transfer_stays(self.connection, transfers, operation_id, now)


def last_transfers(connection: Connection, admission_ids: Iterable[int]) -> dict[int, datetime]:
    """The latest transfer time of each of these admissions that has moved bed (one query)."""
    wanted = list(set(admission_ids))
    if not wanted:
        return {}
    query = (
        select(BedTransfer.admission_id, func.max(BedTransfer.transferred_at))
        .where(is_among(connection, BedTransfer.admission_id, wanted))
        .group_by(BedTransfer.admission_id)
    )
    return {admission_id: moved for admission_id, moved in connection.execute(query)}


def transfer_stays(
    connection: Connection, transfers: list[NewTransfer], operation_id: int, now: datetime
) -> None:
    """Move each stay to its new bed and record the move; ConcurrentChange if the ward changed since
    validation. The old beds are released first: a bed's current patient is unique, so the patient
    cannot be recorded in the new bed while the old one still holds them."""
    if not transfers:
        return
    chunk = values_table(
        connection,
        {"admission": Integer(), "patient": Integer(), "from_bed": Integer(), "to_bed": Integer()},
        [(t.admission_id, t.patient_id, t.from_bed_id, t.to_bed_id) for t in transfers],
    )
    release = (
        update(WardBed)
        .where(WardBed.id == chunk.c.from_bed, WardBed.current_patient_id == chunk.c.patient)
        .values(status=BedStatus.AVAILABLE.value, current_patient_id=None, updated_at=now)
    )
    expect_changed(connection, release, len(transfers))
    occupy = (
        update(WardBed)
        .where(WardBed.id == chunk.c.to_bed, WardBed.status == BedStatus.AVAILABLE.value)
        .values(status=BedStatus.OCCUPIED.value, current_patient_id=chunk.c.patient, updated_at=now)
    )
    expect_changed(connection, occupy, len(transfers))
    move = (
        update(PatientAdmission)
        .where(
            PatientAdmission.id == chunk.c.admission,
            PatientAdmission.is_active.is_(True),
            PatientAdmission.bed_id == chunk.c.from_bed,
        )
        .values(bed_id=chunk.c.to_bed)
    )
    expect_changed(connection, move, len(transfers))
    insert_rows(
        connection,
        BedTransfer,
        ("admission_id", "from_bed_id", "to_bed_id", "transferred_at", "reason"),
        ((t.admission_id, t.from_bed_id, t.to_bed_id, t.transferred_at, t.reason) for t in transfers),
        shared={"bulk_operation_id": operation_id, "created_at": now},
    )

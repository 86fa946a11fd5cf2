"""transfer_patients: move each admitted patient to another available bed (HL7 ADT A02).

The stay goes on: the patient's active PatientAdmission keeps its admission date and now names the new
bed; a BedTransfer records where the patient was and when they moved, so the reports can tell which bed
held them when. The old bed is released and the new one occupied in the file's transaction.

Checks: the patient exists (unknown-patient) and has an active admission (not-admitted) whose bed
records them (constraint-error, as for discharges); the target bed exists (unknown-bed), is not the
patient's current bed (same-bed) and is available (bed-not-available, saying occupied or maintenance);
the transfer date is not in the future nor before the patient came to the current bed, at admission or
by their last transfer (transfer-before-admission). A second row for the same patient or the same target
bed fails "same as line N", even if the first row failed too: the file is ambiguous about them. Rows
are checked against the ward as it was before the file: a bed freed by one row is not free for another.

Store: ``TransferStore`` (``ports``): looks patients, beds and earlier moves up, moves, notifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from processor.core.csv_reading import Record
from processor.core.fields import OptionalFlag, OptionalPastDateTime, RequiredCode, RequiredText
from processor.core.operation_kinds import OperationType, format_of
from processor.core.operation_types import BedStatus
from processor.core.problems import Code, RowError
from processor.operations.base import RowOutcome, RunContext
from processor.operations.ports import BedState, CareEvent, NotificationLine, PatientState
from processor.operations.transfer_patients.ports import NewTransfer, TransferLookups, TransferStore
from processor.operations.ward_checks import (
    CODE_MAX,
    TEXT_MAX,
    FirstLines,
    RowForm,
    admission_problem,
    cell_error,
    notify_caregivers,
    optional_flag,
    optional_past_datetime,
    outcome,
    parse_rows,
    required_text,
)

FORMAT = format_of(OperationType.TRANSFER_PATIENTS)


class TransferCode(StrEnum):
    """The row codes only transfers write (the shared ones are ``core.problems.Code``)."""

    SAME_BED = "same-bed"
    TRANSFER_BEFORE_ADMISSION = "transfer-before-admission"


class TransferRow(BaseModel):
    """One transfer row after validation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    patient_id: RequiredCode
    to_bed_id: RequiredCode
    reason: RequiredText
    transfer_date: OptionalPastDateTime = None
    notify: OptionalFlag = None


class TransferCells(NamedTuple):
    """A transfer row the fast path accepted: ``TransferRow``'s fields and values."""

    patient_id: str
    to_bed_id: str
    reason: str
    transfer_date: datetime | None
    notify: bool | None


FORM = RowForm(
    TransferRow,
    TransferCells,
    (
        required_text(CODE_MAX),
        required_text(CODE_MAX),
        required_text(TEXT_MAX),
        optional_past_datetime,
        optional_flag,
    ),
)
Row = TransferRow | TransferCells


@dataclass(frozen=True, slots=True)
class Stay:
    """An admitted patient as a transfer needs them: who, which admission, which bed, since when."""

    patient: PatientState
    admission_id: int
    bed_id: int
    in_bed_since: datetime
    moved_before: bool  # whether the stay has moved bed already (the message names the reference)


def stay_of(patient: PatientState, last_transfers: dict[int, datetime]) -> Stay | None:
    """The patient's stay, or None when they have no active admission."""
    if patient.admission_id is None or patient.bed_id is None or patient.admitted_at is None:
        return None
    moved = last_transfers.get(patient.admission_id)
    since = patient.admitted_at if moved is None else moved
    return Stay(patient, patient.admission_id, patient.bed_id, since, moved is not None)


def bed_problem(record: Record, bed: BedState | None, patient: PatientState | None) -> RowError | None:
    """unknown-bed, same-bed (the patient's own bed), or bed-not-available saying why."""
    if bed is None:
        return cell_error(record, "to_bed_id", Code.UNKNOWN_BED, "to_bed_id is not a known bed")
    if patient is not None and patient.bed_id == bed.id:
        return cell_error(record, "to_bed_id", TransferCode.SAME_BED, "the patient is already in this bed")
    if bed.status != BedStatus.AVAILABLE:
        return cell_error(
            record, "to_bed_id", Code.BED_NOT_AVAILABLE, f"the bed is {bed.status}, not available"
        )
    return None


def date_problem(record: Record, stay: Stay, transferred_at: datetime) -> RowError | None:
    """transfer-before-admission: a stay cannot move before it began, or before its last move."""
    if transferred_at >= stay.in_bed_since:
        return None
    since = "the patient's last transfer" if stay.moved_before else "the admission"
    message = f"transfer_date is before {since} ({stay.in_bed_since.isoformat()})"
    return cell_error(record, "transfer_date", TransferCode.TRANSFER_BEFORE_ADMISSION, message)


@dataclass
class TransferPatientsRun:
    """One file's state: the first line of every patient and every target bed."""

    context: RunContext
    patients_seen: FirstLines = field(init=False)
    beds_seen: FirstLines = field(init=False)

    def __post_init__(self) -> None:
        self.patients_seen = FirstLines("patient_id", Code.CONSTRAINT_ERROR, self.context.first_lines)
        self.beds_seen = FirstLines("to_bed_id", Code.BED_NOT_AVAILABLE, self.context.first_lines)

    def validate(self, records: list[Record], lookups: TransferLookups) -> list[RowOutcome]:
        parsed = parse_rows(FORM, records, self.context)
        rows = [(record, row) for record, row in parsed if not isinstance(row, list)]
        self.patients_seen.claim([(row.patient_id, record.line) for record, row in rows])
        self.beds_seen.claim([(row.to_bed_id, record.line) for record, row in rows])
        patients = lookups.patients_by_mrn(row.patient_id for _, row in rows)
        beds = lookups.beds_by_code(row.to_bed_id for _, row in rows)
        admitted = [p.admission_id for p in patients.values() if p.admission_id is not None]
        moves = lookups.last_transfers(admitted)
        return [self._outcome(record, row, patients, beds, moves) for record, row in parsed]

    def _outcome(
        self,
        record: Record,
        row: Row | list[RowError],
        patients: dict[str, PatientState],
        beds: dict[str, BedState],
        moves: dict[int, datetime],
    ) -> RowOutcome:
        if isinstance(row, list):
            return RowOutcome(record.line, errors=row)
        patient, bed = patients.get(row.patient_id), beds.get(row.to_bed_id)
        checks = (
            self.patients_seen.check(record),
            self.beds_seen.check(record),
            admission_problem(record, patient),
            bed_problem(record, bed, patient),
        )
        errors = [error for error in checks if error is not None]
        stay = stay_of(patient, moves) if patient is not None else None
        if errors or stay is None or bed is None:
            return outcome(record, errors)
        transferred_at = row.transfer_date or self.context.now
        late = date_problem(record, stay, transferred_at)
        if late is not None:
            return outcome(record, [late])
        return outcome(record, [], self._transfer(row, stay, bed, transferred_at))

    def _transfer(self, row: Row, stay: Stay, bed: BedState, at: datetime) -> NewTransfer:
        notify = self.context.notify if row.notify is None else row.notify
        patient = stay.patient
        event = CareEvent("transfer", patient.id, patient.mrn, bed.ward_code, bed.code, at)
        return NewTransfer(
            patient.id, stay.admission_id, stay.bed_id, bed.id, at, row.reason, event if notify else None
        )

    def apply(self, payloads: list[NewTransfer], store: TransferStore) -> list[NotificationLine]:
        context = self.context
        store.transfer(payloads, context.operation_id, context.now)
        return notify_caregivers(store, payloads, context)

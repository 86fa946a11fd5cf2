"""bulk_assignment: admit each patient to a bed (a PatientAdmission; the bed becomes occupied).

Checks: the patient exists (unknown-patient) and has no active admission (already-admitted); the bed
exists (unknown-bed) and is available (bed-not-available, saying occupied or maintenance); a second row
for the same bed or the same patient fails "same as line N". The bed is occupied by a conditional update,
backed by the database's unique active-admission indexes, so two daemons never fill one bed twice.

Store: ``AssignmentStore`` (``ports``): looks patients and beds up, admits, notifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from processor.core.csv_reading import Record
from processor.core.fields import (
    OptionalFlag,
    OptionalLongText,
    OptionalPastDateTime,
    RequiredCode,
    RequiredText,
)
from processor.core.operation_kinds import OperationType, format_of
from processor.core.operation_types import BedStatus
from processor.core.problems import Code, RowError
from processor.operations.base import RowOutcome, RunContext
from processor.operations.bulk_assignment.ports import AssignmentLookups, AssignmentStore, NewAdmission
from processor.operations.ports import BedState, CareEvent, NotificationLine, PatientState
from processor.operations.ward_checks import (
    CODE_MAX,
    LONG_TEXT_MAX,
    TEXT_MAX,
    FirstLines,
    RowForm,
    cell_error,
    notify_caregivers,
    optional_flag,
    optional_past_datetime,
    optional_text,
    outcome,
    parse_rows,
    required_text,
)

FORMAT = format_of(OperationType.BULK_ASSIGNMENT)


class AssignmentRow(BaseModel):
    """One assignment row after validation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    patient_id: RequiredCode
    bed_id: RequiredCode
    reason: RequiredText
    chief_complaint: OptionalLongText = None
    admission_date: OptionalPastDateTime = None
    notify: OptionalFlag = None


class AssignmentCells(NamedTuple):
    """An assignment row the fast path accepted: ``AssignmentRow``'s fields and values."""

    patient_id: str
    bed_id: str
    reason: str
    chief_complaint: str | None
    admission_date: datetime | None
    notify: bool | None


FORM = RowForm(
    AssignmentRow,
    AssignmentCells,
    (
        required_text(CODE_MAX),
        required_text(CODE_MAX),
        required_text(TEXT_MAX),
        optional_text(LONG_TEXT_MAX),
        optional_past_datetime,
        optional_flag,
    ),
)
Row = AssignmentRow | AssignmentCells


def bed_problem(record: Record, bed: BedState | None) -> RowError | None:
    """unknown-bed, or bed-not-available saying why."""
    if bed is None:
        return cell_error(record, "bed_id", Code.UNKNOWN_BED, "bed_id is not a known bed")
    if bed.status != BedStatus.AVAILABLE:
        return cell_error(record, "bed_id", Code.BED_NOT_AVAILABLE, f"the bed is {bed.status}, not available")
    return None


def patient_problem(record: Record, patient: PatientState | None) -> RowError | None:
    """unknown-patient, or already-admitted naming the bed."""
    if patient is None:
        return cell_error(record, "patient_id", Code.UNKNOWN_PATIENT, "patient_id is not a known patient")
    if patient.admission_id is not None:
        return cell_error(
            record,
            "patient_id",
            Code.ALREADY_ADMITTED,
            f"the patient is already admitted (bed {patient.bed_code})",
        )
    return None


@dataclass
class BulkAssignmentRun:
    """One file's state: the first line of every bed and patient."""

    context: RunContext
    beds_seen: FirstLines = field(init=False)
    patients_seen: FirstLines = field(init=False)

    def __post_init__(self) -> None:
        self.beds_seen = FirstLines("bed_id", Code.BED_NOT_AVAILABLE, self.context.first_lines)
        self.patients_seen = FirstLines("patient_id", Code.ALREADY_ADMITTED, self.context.first_lines)

    def validate(self, records: list[Record], lookups: AssignmentLookups) -> list[RowOutcome]:
        parsed = parse_rows(FORM, records, self.context)
        rows = [(record, row) for record, row in parsed if not isinstance(row, list)]
        self.patients_seen.claim([(row.patient_id, record.line) for record, row in rows])
        self.beds_seen.claim([(row.bed_id, record.line) for record, row in rows])
        patients = lookups.patients_by_mrn(row.patient_id for _, row in rows)
        beds = lookups.beds_by_code(row.bed_id for _, row in rows)
        return [self._outcome(record, row, patients, beds) for record, row in parsed]

    def _outcome(
        self,
        record: Record,
        row: Row | list[RowError],
        patients: dict[str, PatientState],
        beds: dict[str, BedState],
    ) -> RowOutcome:
        if isinstance(row, list):
            return RowOutcome(record.line, errors=row)
        patient, bed = patients.get(row.patient_id), beds.get(row.bed_id)
        if (
            patient is not None
            and patient.admission_id is None
            and bed is not None
            and bed.status == BedStatus.AVAILABLE
            and record.line not in self.patients_seen.earlier_line
            and record.line not in self.beds_seen.earlier_line
        ):  # the common row, checked without building the checks' answers
            return RowOutcome(record.line, payload=self._admission(row, patient, bed))
        checks = (
            self.patients_seen.check(record),
            self.beds_seen.check(record),
            patient_problem(record, patient),
            bed_problem(record, bed),
        )
        return outcome(record, [error for error in checks if error is not None])

    def _admission(self, row: Row, patient: PatientState, bed: BedState) -> NewAdmission:
        admitted_at = row.admission_date or self.context.now
        notify = self.context.notify if row.notify is None else row.notify
        event = (
            CareEvent("admission", patient.id, patient.mrn, bed.ward_code, bed.code, admitted_at)
            if notify
            else None
        )
        return NewAdmission(patient.id, bed.id, admitted_at, row.reason, row.chief_complaint, event)

    def apply(self, payloads: list[NewAdmission], store: AssignmentStore) -> list[NotificationLine]:
        store.admit(payloads, self.context.operation_id, self.context.now)
        return notify_caregivers(store, payloads, self.context)

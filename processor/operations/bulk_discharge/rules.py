"""bulk_discharge: discharge each admitted patient (a PatientDischarge; the bed is released).

Checks: the patient exists (unknown-patient) and has an active admission (not-admitted); the discharge
date is not in the future nor before the admission; a patient twice in one file fails the second row.
``discharge_status`` is one of DISCHARGE_STATUSES, ``other`` when empty (wardbulk does not guess an outcome).

Store: ``DischargeStore`` (``ports``): looks patients up, discharges, notifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict

from processor.core.csv_reading import Record
from processor.core.fields import (
    OptionalFlag,
    OptionalLongText,
    OptionalPastDateTime,
    OptionalText,
    RequiredCode,
    one_of,
)
from processor.core.operation_kinds import OperationType, format_of
from processor.core.problems import Code, RowError
from processor.operations.base import RowOutcome, RunContext
from processor.operations.bulk_discharge.ports import DischargeLookups, DischargeStore, NewDischarge
from processor.operations.ports import CareEvent, NotificationLine, PatientState
from processor.operations.ward_checks import (
    CODE_MAX,
    LONG_TEXT_MAX,
    FirstLines,
    RowForm,
    admission_problem,
    cell_error,
    notify_caregivers,
    optional_choice,
    optional_flag,
    optional_past_datetime,
    optional_text,
    outcome,
    parse_rows,
    required_text,
)

FORMAT = format_of(OperationType.BULK_DISCHARGE)
DISCHARGE_STATUSES = ("recovered", "transferred", "against_medical_advice", "deceased", "other")
DEFAULT_DISCHARGE_STATUS = "other"


class DischargeRow(BaseModel):
    """One discharge row after validation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    patient_id: RequiredCode
    discharge_notes: OptionalLongText = None
    discharge_status: Annotated[OptionalText, one_of(DISCHARGE_STATUSES)] = None
    discharge_date: OptionalPastDateTime = None
    notify: OptionalFlag = None


class DischargeCells(NamedTuple):
    """A discharge row the fast path accepted: ``DischargeRow``'s fields and values."""

    patient_id: str
    discharge_notes: str | None
    discharge_status: str | None
    discharge_date: datetime | None
    notify: bool | None


FORM = RowForm(
    DischargeRow,
    DischargeCells,
    (
        required_text(CODE_MAX),
        optional_text(LONG_TEXT_MAX),
        optional_choice(DISCHARGE_STATUSES),
        optional_past_datetime,
        optional_flag,
    ),
)
Row = DischargeRow | DischargeCells


@dataclass
class BulkDischargeRun:
    """One file's state: the first line of every patient."""

    context: RunContext
    patients_seen: FirstLines = field(init=False)

    def __post_init__(self) -> None:
        self.patients_seen = FirstLines("patient_id", Code.NOT_ADMITTED, self.context.first_lines)

    def validate(self, records: list[Record], lookups: DischargeLookups) -> list[RowOutcome]:
        parsed = parse_rows(FORM, records, self.context)
        rows = [(record, row) for record, row in parsed if not isinstance(row, list)]
        self.patients_seen.claim([(row.patient_id, record.line) for record, row in rows])
        patients = lookups.patients_by_mrn(row.patient_id for _, row in rows)
        return [self._outcome(record, row, patients) for record, row in parsed]

    def _outcome(
        self, record: Record, row: Row | list[RowError], patients: dict[str, PatientState]
    ) -> RowOutcome:
        if isinstance(row, list):
            return RowOutcome(record.line, errors=row)
        patient = patients.get(row.patient_id)
        if (
            patient is None
            or patient.admission_id is None
            or patient.bed_patient_id != patient.id
            or record.line in self.patients_seen.earlier_line
        ):
            checks = (self.patients_seen.check(record), admission_problem(record, patient))
            return outcome(record, [error for error in checks if error is not None])
        discharged_at = row.discharge_date or self.context.now
        if patient.admitted_at is not None and discharged_at < patient.admitted_at:
            return outcome(
                record,
                [
                    cell_error(
                        record,
                        "discharge_date",
                        Code.CONSTRAINT_ERROR,
                        "discharge_date is before the admission date",
                    )
                ],
            )
        return RowOutcome(record.line, payload=self._discharge(row, patient, discharged_at))

    def _discharge(self, row: Row, patient: PatientState, discharged_at: datetime) -> NewDischarge:
        assert patient.admission_id is not None and patient.bed_id is not None
        notify = self.context.notify if row.notify is None else row.notify
        event = (
            CareEvent(
                "discharge",
                patient.id,
                patient.mrn,
                patient.ward_code or "",
                patient.bed_code or "",
                discharged_at,
            )
            if notify
            else None
        )
        return NewDischarge(
            patient.id,
            patient.admission_id,
            patient.bed_id,
            discharged_at,
            row.discharge_status or DEFAULT_DISCHARGE_STATUS,
            row.discharge_notes,
            event,
        )

    def apply(self, payloads: list[NewDischarge], store: DischargeStore) -> list[NotificationLine]:
        store.discharge(payloads, self.context.operation_id, self.context.now)
        return notify_caregivers(store, payloads, self.context)

"""import_patients: each row creates a User and a Patient (and a Caregiver when one is named).

Checks, in order: the row model (required names and e-mail, formats, dates not in the future), duplicates
inside the file (``same as line N``), duplicates against the database (one query per chunk per key).
An empty patient_id gets a generated identifier ``WB-<operation>-<line>``, returned in result.csv.

Store: ``PatientLookups`` to validate, ``PatientImportStore`` to apply (``ports``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, ValidationError

from processor.core.csv_reading import Record
from processor.core.fields import (
    OptionalBirthDate,
    OptionalEmail,
    OptionalPhone,
    OptionalText,
    RequiredEmail,
    RequiredName,
    max_length,
    present_cells,
    row_errors,
)
from processor.core.operation_kinds import OperationType, format_of
from processor.core.problems import Code, RowError
from processor.operations.base import RowOutcome, RunContext
from processor.operations.import_patients.ports import NewPatient, PatientImportStore, PatientLookups
from processor.operations.ports import NotificationLine
from processor.operations.ward_checks import FirstLines

FORMAT = format_of(OperationType.IMPORT_PATIENTS)
CaregiverName = Annotated[str, max_length(300)] | None
GENDERS = ("M", "F", "O", "U")
PATIENT_ID_MAX = 64


class PatientRow(BaseModel):
    """One import row after validation. Cells arrive as text; every field strips its cell."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    first_name: RequiredName
    last_name: RequiredName
    email: RequiredEmail
    patient_id: OptionalText = None
    phone: OptionalPhone = None
    date_of_birth: OptionalBirthDate = None
    gender: OptionalText = None
    caregiver_name: CaregiverName = None
    caregiver_email: OptionalEmail = None
    caregiver_phone: OptionalPhone = None


def _validate_row(record: Record, context: RunContext) -> PatientRow | list[RowError]:
    try:
        row = PatientRow.model_validate(present_cells(record.cells), context={"now": context.now})
    except ValidationError as exc:
        return row_errors(exc, record.line, record.cells)
    errors = _checked_fields(row, record)
    return errors or row


def _checked_fields(row: PatientRow, record: Record) -> list[RowError]:
    """Cross-field rules that read better here than as pydantic validators."""
    errors = []
    if row.patient_id is not None and len(row.patient_id) > PATIENT_ID_MAX:
        errors.append(
            _cell_error(
                record,
                "patient_id",
                Code.CONSTRAINT_ERROR,
                f"patient_id is longer than {PATIENT_ID_MAX} characters",
            )
        )
    if row.gender is not None and row.gender.upper() not in GENDERS:
        errors.append(
            _cell_error(record, "gender", Code.CONSTRAINT_ERROR, "gender must be one of M, F, O, U")
        )
    if row.caregiver_name is None and (row.caregiver_email or row.caregiver_phone):
        errors.append(
            _cell_error(
                record,
                "caregiver_name",
                Code.CONSTRAINT_ERROR,
                "caregiver_name is required when a caregiver e-mail or phone is given",
            )
        )
    return errors


def _cell_error(record: Record, column: str, code: Code, message: str) -> RowError:
    return RowError(record.line, column, code, message, record.cells.get(column, ""))


def generated_patient_id(operation_id: int, line: int) -> str:
    """The identifier given to a row without patient_id: stable, so a reprocessed file gets the same."""
    return f"WB-{operation_id:06d}-{line:07d}"


@dataclass
class ImportPatientsRun:
    """One file's validation: row model, then repeats within the file, then clashes with the database."""

    context: RunContext
    emails_seen: FirstLines = field(init=False)
    ids_seen: FirstLines = field(init=False)

    def __post_init__(self) -> None:
        self.emails_seen = FirstLines("email", Code.DUPLICATE_EMAIL, self.context.first_lines)
        self.ids_seen = FirstLines("patient_id", Code.DUPLICATE_PATIENT_ID, self.context.first_lines)

    def validate(self, records: list[Record], lookups: PatientLookups) -> list[RowOutcome]:
        outcomes = [self._validate_one(record) for record in records]
        self._reject_repeated_in_file(records, outcomes)
        self._reject_known_to_database(outcomes, lookups)
        return outcomes

    def apply(self, payloads: list[NewPatient], store: PatientImportStore) -> list[NotificationLine]:
        store.insert_patients(payloads, self.context.operation_id, self.context.now)
        return []

    def _validate_one(self, record: Record) -> RowOutcome:
        if record.errors:
            return RowOutcome(record.line, errors=record.errors)
        checked = _validate_row(record, self.context)
        if isinstance(checked, list):
            return RowOutcome(record.line, errors=checked)
        patient = self._new_patient(checked, record.line)
        return RowOutcome(record.line, payload=patient, created={"assigned_patient_id": patient.mrn})

    def _new_patient(self, row: PatientRow, line: int) -> NewPatient:
        mrn = row.patient_id or generated_patient_id(self.context.operation_id, line)
        return NewPatient(
            mrn=mrn,
            first_name=row.first_name,
            last_name=row.last_name,
            email=row.email,
            phone=row.phone,
            date_of_birth=row.date_of_birth,
            gender=row.gender.upper() if row.gender else None,
            caregiver_name=row.caregiver_name,
            caregiver_email=row.caregiver_email,
            caregiver_phone=row.caregiver_phone,
        )

    def _reject_repeated_in_file(self, records: list[Record], outcomes: list[RowOutcome]) -> None:
        """A valid row whose e-mail or patient_id an earlier valid row used fails "same as line N"."""
        candidates = [(record, o) for record, o in zip(records, outcomes, strict=True) if o.ok]
        self.emails_seen.claim([(o.payload.email, o.line) for _, o in candidates])
        self.ids_seen.claim([(o.payload.mrn, o.line) for _, o in candidates])
        for record, outcome in candidates:
            checks = (self.emails_seen.check(record), self.ids_seen.check(record))
            outcome.errors.extend(error for error in checks if error is not None)
            if outcome.errors:
                outcome.payload, outcome.created = None, {}

    def _reject_known_to_database(self, outcomes: list[RowOutcome], store: PatientLookups) -> None:
        candidates = [outcome for outcome in outcomes if outcome.ok]
        if not candidates:
            return
        taken_emails = store.existing_emails(o.payload.email for o in candidates)
        taken_ids = store.existing_patient_ids(o.payload.mrn for o in candidates)
        for outcome in candidates:
            patient: NewPatient = outcome.payload
            if patient.email in taken_emails:
                outcome.errors.append(
                    RowError(
                        outcome.line,
                        "email",
                        Code.DUPLICATE_EMAIL,
                        "email already belongs to another user",
                        patient.email,
                    )
                )
            if patient.mrn in taken_ids:
                outcome.errors.append(
                    RowError(
                        outcome.line,
                        "patient_id",
                        Code.DUPLICATE_PATIENT_ID,
                        "patient_id already exists",
                        patient.mrn,
                    )
                )
            if outcome.errors:
                outcome.payload, outcome.created = None, {}

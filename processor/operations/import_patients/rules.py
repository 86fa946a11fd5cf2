"""import_patients: each row creates a User and a Patient (and a Caregiver when one is named).

Checks, in order: the row model (required names and e-mail, formats, dates not in the future), duplicates
inside the file (``same as line N``), duplicates against the database (one query per chunk per key).
An empty patient_id gets a generated identifier ``WB-<operation>-<line>``, returned in result.csv.

In upsert mode (``RunContext.upsert``) a known patient_id updates that patient instead of being a
duplicate: ``changes`` holds those rules. result.csv's ``change`` says ``created``, ``updated`` or
``unchanged``.

Store: ``PatientLookups`` to validate, ``PatientImportStore`` to apply (``ports``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, ValidationError

from processor.core.csv_reading import Record
from processor.core.fields import (
    NAME_MAX,
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
from processor.operations.import_patients.changes import (
    Proposal,
    change_of,
    created,
    uncleared_errors,
    updated,
    without_cleared,
)
from processor.operations.import_patients.fast_path import (
    CAREGIVER_NAME_MAX,
    GENDERS,
    PATIENT_ID_MAX,
    certain_patients,
)
from processor.operations.import_patients.ports import (
    NewPatient,
    PatientImportStore,
    PatientLookups,
    PatientUpdate,
)
from processor.operations.ports import NotificationLine
from processor.operations.ward_checks import FirstLines

FORMAT = format_of(OperationType.IMPORT_PATIENTS)
CaregiverName = Annotated[str, max_length(CAREGIVER_NAME_MAX)] | None
OptionalName = Annotated[str, max_length(NAME_MAX)] | None


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


class PatientChangeRow(PatientRow):
    """One upsert row after validation: every column may be empty (it leaves the stored value alone);
    whether the names and e-mail are required is known only once the database says the patient is new."""

    first_name: OptionalName = None  # type: ignore[assignment]
    last_name: OptionalName = None  # type: ignore[assignment]
    email: OptionalEmail = None  # type: ignore[assignment]


def _validate_row(
    record: Record,
    context: RunContext,
    model: type[PatientRow] = PatientRow,
    cells: dict[str, str] | None = None,
) -> PatientRow | list[RowError]:
    cells = record.cells if cells is None else cells
    try:
        row = model.model_validate(present_cells(cells), context=context.validation)
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
        if self.context.upsert:
            return self._validate_upserts(records, lookups)
        outcomes = self._checked(records)
        self._reject_repeated_in_file(records, outcomes)
        self._reject_known_to_database(outcomes, lookups)
        return outcomes

    def apply(
        self, payloads: list[NewPatient | PatientUpdate], store: PatientImportStore
    ) -> list[NotificationLine]:
        new = [payload for payload in payloads if isinstance(payload, NewPatient)]
        changed = [p for p in payloads if isinstance(p, PatientUpdate) and (p.changes or p.new_caregiver)]
        store.insert_patients(new, self.context.operation_id, self.context.now)
        if changed:
            store.update_patients(changed, self.context.operation_id, self.context.now)
        return []

    def _validate_upserts(self, records: list[Record], lookups: PatientLookups) -> list[RowOutcome]:
        """Upsert mode: each row's own checks, then repeats in the file, then, per row, an update of the
        known patient or the creation of a new one (``changes``)."""
        outcomes = [self._propose(record) for record in records]
        self._reject_repeated_in_file(records, outcomes)
        proposals = [outcome for outcome in outcomes if outcome.ok]
        if not proposals:
            return outcomes
        known = lookups.current_patients(outcome.payload.mrn for outcome in proposals)
        owners = lookups.email_owners(o.payload.email for o in proposals if o.payload.email is not None)
        for outcome in proposals:
            proposal: Proposal = outcome.payload
            owner = owners.get(proposal.email) if proposal.email is not None else None
            current = known.get(proposal.mrn)
            decided = (
                created(proposal, owner is not None) if current is None else updated(proposal, current, owner)
            )
            if isinstance(decided, list):
                outcome.errors.extend(decided)
                outcome.payload, outcome.created = None, {}
            else:
                outcome.payload = decided
                outcome.created = {"assigned_patient_id": proposal.mrn, "change": change_of(decided)}
        return outcomes

    def _propose(self, record: Record) -> RowOutcome:
        if record.errors:
            return RowOutcome(record.line, errors=record.errors)
        cells, cleared = without_cleared(record.cells, self.context.clear_marker)
        checked = _validate_row(record, self.context, PatientChangeRow, cells)
        errors = uncleared_errors(record.line, cleared, record.cells)
        if isinstance(checked, list) or errors:
            return RowOutcome(record.line, errors=[*errors, *(checked if isinstance(checked, list) else [])])
        values = checked.model_dump(exclude_none=True)
        if "gender" in values:
            values["gender"] = values["gender"].upper()
        mrn = values.pop("patient_id", None) or generated_patient_id(self.context.operation_id, record.line)
        return RowOutcome(record.line, payload=Proposal(record.line, mrn, values, cleared, record.cells))

    def _checked(self, records: list[Record]) -> list[RowOutcome]:
        """Each record's own checks: column by column (``fast_path``), and through the row model for
        the rows the fast path is not certain of (which gives their errors)."""
        today = self.context.validation["today"]
        certain = certain_patients(records, today, self._generated_id)
        return [
            self._validate_one(record) if patient is None else self._accepted(record.line, patient)
            for record, patient in zip(records, certain, strict=True)
        ]

    def _generated_id(self, line: int) -> str:
        return generated_patient_id(self.context.operation_id, line)

    @staticmethod
    def _accepted(line: int, patient: NewPatient) -> RowOutcome:
        return RowOutcome(
            line, payload=patient, created={"assigned_patient_id": patient.mrn, "change": "created"}
        )

    def _validate_one(self, record: Record) -> RowOutcome:
        if record.errors:
            return RowOutcome(record.line, errors=record.errors)
        checked = _validate_row(record, self.context)
        if isinstance(checked, list):
            return RowOutcome(record.line, errors=checked)
        return self._accepted(record.line, self._new_patient(checked, record.line))

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
        self.emails_seen.claim([(o.payload.email, o.line) for _, o in candidates if o.payload.email])
        self.ids_seen.claim([(o.payload.mrn, o.line) for _, o in candidates])
        repeated = self.emails_seen.earlier_line.keys() | self.ids_seen.earlier_line.keys()
        for record, outcome in candidates:
            if outcome.line not in repeated:  # most rows: no dictionary lookups, no checks
                continue
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

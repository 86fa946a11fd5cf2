"""import_patients in upsert mode: a row whose patient_id is known changes that patient (issue 14).

Contract, per row:

- A cell with a value sets it; an empty cell leaves the stored value alone; a cell holding exactly the
  configured ``clear_marker`` (surrounding spaces aside) clears an optional value. The names, the e-mail,
  the patient_id and a caregiver's name cannot be cleared (``constraint-error``).
- A row whose patient_id is not known (or empty: a generated one) creates the patient, with the same
  requirements as insert mode: a first and last name and an e-mail.
- An e-mail that belongs to another user is ``duplicate-email``, as in insert mode.
- Caregivers are told apart by name (case and surrounding spaces ignored): a name the patient does not
  have adds a caregiver; a name it has once updates that caregiver's e-mail and phone; a name it has more
  than once is ``ambiguous-caregiver``, never a guess.
- A row that changes nothing is ``unchanged``; it is valid and writes nothing.

Pure: the run (``rules``) looks the patients and e-mails up and hands them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from processor.core.problems import Code, RowError
from processor.operations.import_patients.ports import (
    CurrentCaregiver,
    CurrentPatient,
    FieldChange,
    NewCaregiver,
    NewPatient,
    PatientUpdate,
    Value,
)

# A CSV column → the table and column it is stored in.
PATIENT_FIELDS: dict[str, tuple[str, str]] = {
    "first_name": ("users", "first_name"),
    "last_name": ("users", "last_name"),
    "email": ("users", "email"),
    "phone": ("patients", "phone"),
    "date_of_birth": ("patients", "date_of_birth"),
    "gender": ("patients", "gender"),
}
CAREGIVER_FIELDS = {"caregiver_email": "email", "caregiver_phone": "phone"}
NOT_CLEARABLE = ("patient_id", "first_name", "last_name", "email", "caregiver_name")
REQUIRED_TO_CREATE = ("first_name", "last_name", "email")


class PatientCode(StrEnum):
    """The row codes only import_patients writes (the shared ones are ``core.problems.Code``)."""

    AMBIGUOUS_CAREGIVER = "ambiguous-caregiver"


@dataclass(frozen=True)
class Proposal:
    """An upsert row that passed its own checks, before the database says whether its patient exists.

    ``values`` holds the validated value of every column the row carries; ``cleared`` the columns it
    clears; ``cells`` the row's cells, for the error reports.
    """

    line: int
    mrn: str
    values: dict[str, Any]
    cleared: frozenset[str]
    cells: dict[str, str]

    @property
    def email(self) -> str | None:
        email: str | None = self.values.get("email")
        return email


def without_cleared(cells: dict[str, str], marker: str | None) -> tuple[dict[str, str], frozenset[str]]:
    """The cells with the clear marker's cells emptied, and the columns that held it."""
    if marker is None:
        return cells, frozenset()
    cleared = frozenset(column for column, cell in cells.items() if cell.strip() == marker)
    if not cleared:
        return cells, cleared
    return {column: "" if column in cleared else cell for column, cell in cells.items()}, cleared


def uncleared_errors(line: int, cleared: frozenset[str], cells: dict[str, str]) -> list[RowError]:
    """The errors of a row that clears what cannot be cleared, or a caregiver's value without saying
    which caregiver."""
    errors = [
        RowError(line, column, Code.CONSTRAINT_ERROR, f"{column} cannot be cleared", cells.get(column, ""))
        for column in NOT_CLEARABLE
        if column in cleared
    ]
    if cleared & CAREGIVER_FIELDS.keys() and not cells.get("caregiver_name", "").strip():
        message = "caregiver_name is required to clear a caregiver's e-mail or phone"
        errors.append(RowError(line, "caregiver_name", Code.CONSTRAINT_ERROR, message, ""))
    return errors


def created(proposal: Proposal, email_taken: bool) -> NewPatient | list[RowError]:
    """The new patient a proposal for an unknown patient_id creates, or why it cannot."""
    errors = [
        RowError(proposal.line, column, Code.CONSTRAINT_ERROR, f"{column} a value is required", "")
        for column in REQUIRED_TO_CREATE
        if proposal.values.get(column) is None
    ]
    if email_taken:
        errors.append(_taken_email(proposal))
    if errors:
        return errors
    values = proposal.values
    return NewPatient(
        mrn=proposal.mrn,
        first_name=values["first_name"],
        last_name=values["last_name"],
        email=values["email"],
        phone=values.get("phone"),
        date_of_birth=values.get("date_of_birth"),
        gender=values.get("gender"),
        caregiver_name=values.get("caregiver_name"),
        caregiver_email=values.get("caregiver_email"),
        caregiver_phone=values.get("caregiver_phone"),
    )


def updated(
    proposal: Proposal, current: CurrentPatient, email_owner: int | None
) -> PatientUpdate | list[RowError]:
    """The changes a proposal makes to a known patient, or why it cannot make them."""
    errors: list[RowError] = []
    if proposal.email is not None and email_owner not in (None, current.user_id):
        errors.append(_taken_email(proposal))
    caregiver = _caregiver_named(proposal, current)
    if isinstance(caregiver, RowError):
        errors.append(caregiver)
    if errors:
        return errors
    changes = _patient_changes(proposal, current)
    new_caregiver = None
    if isinstance(caregiver, CurrentCaregiver):
        changes += _caregiver_changes(proposal, caregiver)
    elif "caregiver_name" in proposal.values:
        new_caregiver = NewCaregiver(
            current.id,
            proposal.values["caregiver_name"],
            proposal.values.get("caregiver_email"),
            proposal.values.get("caregiver_phone"),
            len(current.caregivers),
        )
    return PatientUpdate(proposal.mrn, proposal.line, tuple(changes), new_caregiver)


def _patient_changes(proposal: Proposal, current: CurrentPatient) -> list[FieldChange]:
    changes = []
    for column, (table, stored_as) in PATIENT_FIELDS.items():
        old = getattr(current, stored_as)
        new = _wanted(proposal, column, old)
        if new != old:
            row_id = current.user_id if table == "users" else current.id
            changes.append(FieldChange(table, stored_as, row_id, old, new))
    return changes


def _caregiver_changes(proposal: Proposal, caregiver: CurrentCaregiver) -> list[FieldChange]:
    changes = []
    for column, stored_as in CAREGIVER_FIELDS.items():
        old = getattr(caregiver, stored_as)
        new = _wanted(proposal, column, old)
        if new != old:
            changes.append(FieldChange("caregivers", stored_as, caregiver.id, old, new))
    return changes


def _wanted(proposal: Proposal, column: str, old: Value) -> Value:
    """The value a column should hold after the row: its cell's, none if cleared, else as it is."""
    if column in proposal.cleared:
        return None
    new: Value = proposal.values.get(column, old)
    return new


def _caregiver_named(proposal: Proposal, current: CurrentPatient) -> CurrentCaregiver | RowError | None:
    """The patient's caregiver the row names, None if it names none or a new one; an error if the
    name is shared by several of the patient's caregivers."""
    name = proposal.values.get("caregiver_name")
    if name is None:
        return None
    wanted = name.strip().casefold()
    same_name = [caregiver for caregiver in current.caregivers if caregiver.name.strip().casefold() == wanted]
    if len(same_name) > 1:
        return RowError(
            proposal.line,
            "caregiver_name",
            PatientCode.AMBIGUOUS_CAREGIVER,
            f"the patient has {len(same_name)} caregivers of this name: change them by hand",
            proposal.cells.get("caregiver_name", ""),
        )
    return same_name[0] if same_name else None


def _taken_email(proposal: Proposal) -> RowError:
    return RowError(
        proposal.line,
        "email",
        Code.DUPLICATE_EMAIL,
        "email already belongs to another user",
        proposal.email or "",
    )


def change_of(payload: NewPatient | PatientUpdate) -> str:
    """What the row does, as result.csv's ``change`` column says it."""
    if isinstance(payload, NewPatient):
        return "created"
    return "updated" if payload.changes or payload.new_caregiver else "unchanged"

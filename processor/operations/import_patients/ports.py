"""What import_patients validates against and writes: its payloads and its store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import NamedTuple, Protocol

Value = str | date | None


class NewPatient(NamedTuple):
    """A validated import row, ready to insert (the payload of import_patients).

    A named tuple rather than a dataclass: payloads wait in the spool between the phases, and a tuple
    pickles and unpickles several times faster, which counts at a million rows.
    """

    mrn: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    date_of_birth: date | None
    gender: str | None
    caregiver_name: str | None
    caregiver_email: str | None
    caregiver_phone: str | None


class CurrentCaregiver(NamedTuple):
    """A caregiver of a known patient, as stored."""

    id: int
    name: str
    email: str | None
    phone: str | None


class CurrentPatient(NamedTuple):
    """A known patient's demographics as stored (upsert mode compares a row with them)."""

    id: int
    user_id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    date_of_birth: date | None
    gender: str | None
    caregivers: tuple[CurrentCaregiver, ...]


class FieldChange(NamedTuple):
    """One stored value a row changes: in ``table`` (users, patients or caregivers), the row ``row_id``,
    ``column`` goes from ``old`` to ``new``. ``old`` is what validation saw: the update is made only
    if it is still there."""

    table: str
    column: str
    row_id: int
    old: Value
    new: Value


class NewCaregiver(NamedTuple):
    """A caregiver an update adds to a known patient, who had ``caregivers_seen`` caregivers when the
    row was validated: it is added only if the patient still has as many."""

    patient_id: int
    name: str
    email: str | None
    phone: str | None
    caregivers_seen: int


class PatientUpdate(NamedTuple):
    """A validated upsert row for a known patient (the other payload of import_patients); no change and
    no caregiver means the row leaves the patient as it is."""

    mrn: str
    line: int
    changes: tuple[FieldChange, ...]
    new_caregiver: NewCaregiver | None


class PatientLookups(Protocol):
    """What import_patients looks up while it validates."""

    def existing_emails(self, emails: Iterable[str]) -> set[str]:
        """Which of these (lower-case) e-mails already belong to a user."""
        ...

    def existing_patient_ids(self, mrns: Iterable[str]) -> set[str]:
        """Which of these patient identifiers already exist (exact match)."""
        ...

    def email_owners(self, emails: Iterable[str]) -> dict[str, int]:
        """The user each of these (lower-case) e-mails belongs to, for those that belong to one."""
        ...

    def current_patients(self, mrns: Iterable[str]) -> dict[str, CurrentPatient]:
        """The known patients among ``mrns`` (exact match), with their demographics and caregivers."""
        ...


class PatientImportStore(PatientLookups, Protocol):
    """import_patients' store: its lookups, its inserts and its updates."""

    def insert_patients(self, patients: list[NewPatient], operation_id: int, now: datetime) -> None:
        """Create a User, a Patient and (when named) a Caregiver for each."""
        ...

    def update_patients(self, updates: list[PatientUpdate], operation_id: int, now: datetime) -> None:
        """Make each update's changes and add its caregiver, writing every change to the audit trail
        (``audit_changes``); ConcurrentChange if a value is no longer what validation saw."""
        ...

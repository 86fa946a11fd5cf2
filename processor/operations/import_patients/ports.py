"""What import_patients validates against and writes: its payload and its store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import NamedTuple, Protocol


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


class PatientLookups(Protocol):
    """What import_patients looks up while it validates."""

    def existing_emails(self, emails: Iterable[str]) -> set[str]:
        """Which of these (lower-case) e-mails already belong to a user."""
        ...

    def existing_patient_ids(self, mrns: Iterable[str]) -> set[str]:
        """Which of these patient identifiers already exist (exact match)."""
        ...


class PatientImportStore(PatientLookups, Protocol):
    """import_patients' store: its lookups and its inserts."""

    def insert_patients(self, patients: list[NewPatient], operation_id: int, now: datetime) -> None:
        """Create a User, a Patient and (when named) a Caregiver for each."""
        ...

"""What operations need from the database, as protocols; ``adapters.database.stores`` implements them.

Every method takes a whole chunk: one query per chunk, never one per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class NewPatient:
    """A validated import row, ready to insert (the payload of import_patients)."""

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


class PatientImportStore(Protocol):
    """Lookups and inserts for import_patients."""

    def existing_emails(self, emails: Iterable[str]) -> set[str]:
        """Which of these (lower-case) e-mails already belong to a user."""
        ...

    def existing_patient_ids(self, mrns: Iterable[str]) -> set[str]:
        """Which of these patient identifiers already exist (exact match)."""
        ...

    def insert_patients(self, patients: list[NewPatient], operation_id: int, now: datetime) -> None:
        """Create a User, a Patient and (when named) a Caregiver for each."""
        ...

"""What the ward operations share: the states their lookups return, and the lookups themselves.

Each operation's room declares the store it needs (``<room>/ports.py``) from these small protocols and
its own writes, so that an operation sees exactly the lookups and writes it uses: its validation gets
the store typed as lookups only, its apply the whole store, on the file's one transaction. The rooms'
SQL implements them (``ward_sql`` the shared lookups); tests/fakes.py has in-memory fakes.

Every method takes a whole chunk: one query per chunk, never one per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class FirstLineIndex(Protocol):
    """The first line each key (an e-mail, a patient_id) appeared on in the file, across its chunks.

    A file of millions of rows has millions of keys: the pipeline's index keeps them on disk, so memory
    does not grow with the file.
    """

    def claim(self, kind: str, keyed_lines: list[tuple[str, int]]) -> list[int | None]:
        """For each ``(key, line)``, in file order: the earlier line that holds ``key`` among keys of
        ``kind``, or ``None`` when this line is the first (and is remembered as such)."""
        ...


@dataclass(frozen=True, slots=True)
class PatientState:
    """A patient as the ward operations see it: with the active admission, if any."""

    id: int
    mrn: str
    admission_id: int | None
    admitted_at: datetime | None
    bed_id: int | None
    bed_code: str | None
    ward_code: str | None
    bed_patient_id: int | None  # who the admission's bed says it holds (the patient, when consistent)


@dataclass(frozen=True, slots=True)
class BedState:
    """A bed with its ward."""

    id: int
    code: str
    ward_id: int
    ward_code: str
    bed_number: str
    status: str
    current_patient_id: int | None


@dataclass(frozen=True, slots=True)
class WardState:
    """A ward by its code."""

    id: int
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class CareEvent:
    """An admission, transfer or discharge that may notify the patient's caregivers."""

    kind: str  # "admission", "transfer" or "discharge"
    patient_id: int
    mrn: str
    ward_code: str
    bed_code: str
    at: datetime


@dataclass(frozen=True, slots=True)
class NotificationLine:
    """One line of the notifications CSV for the hospital's messaging system."""

    patient_id: str
    caregiver_name: str
    caregiver_email: str
    caregiver_phone: str
    kind: str
    ward: str
    bed: str
    at: str
    status: str


class PatientsByMrn(Protocol):
    """Looks patients up by their hospital identifier, each with their active stay."""

    def patients_by_mrn(self, mrns: Iterable[str]) -> dict[str, PatientState]:
        """The known patients among ``mrns``, each with its active admission if any."""
        ...


class BedsByCode(Protocol):
    """Looks beds up by their code."""

    def beds_by_code(self, codes: Iterable[str]) -> dict[str, BedState]:
        """The known beds among ``codes``, with their ward and status."""
        ...


class WardsByCode(Protocol):
    """Looks wards up by their code."""

    def wards_by_code(self, codes: Iterable[str]) -> dict[str, WardState]:
        """The known wards among ``codes``."""
        ...


class CaregiverNotifier(Protocol):
    """Records the caregiver notifications of applied admissions, transfers and discharges."""

    def notify(
        self, events: list[CareEvent], operation_id: int, now: datetime, email: bool
    ) -> list[NotificationLine]:
        """Record a notification per caregiver (or one 'skipped' without caregivers); return the lines.

        With ``email``, a caregiver who has an e-mail address is recorded ``email_pending``, for the
        courier to send after the commit; the others ``queued``, for the messaging system."""
        ...

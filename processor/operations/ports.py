"""What operations need from the database, as protocols; ``adapters.database.stores`` implements them.

Each named store comes in two halves: its lookups (``PatientLookups``), which phase 1 may call on a
plain connection, and the store (``PatientImportStore``), which adds the writes of phase 2, inside the
file's transaction. ``Lookups`` and ``Stores`` are the named stores together, as the pipeline passes
them; each operation takes the one it needs (``lookups.patients``, ``stores.reports``):

- ``patients``: ``PatientLookups`` / ``PatientImportStore``, for import_patients;
- ``admissions``: ``AdmissionLookups`` / ``AdmissionStore``, for bulk_assignment, transfer_patients
  and bulk_discharge;
- ``beds``: ``BedRegistryLookups`` / ``BedRegistryStore``, for sync_beds (bulk_assignment,
  transfer_patients and export_report look beds and wards up in it);
- ``reports``: ``ReportWriter`` (writes only), for export_report.

Every method takes a whole chunk: one query per chunk, never one per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple, Protocol

from processor.core.report_request import ReportRequest


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


class FirstLineIndex(Protocol):
    """The first line each key (an e-mail, a patient_id) appeared on in the file, across its chunks.

    A file of millions of rows has millions of keys: the pipeline's index keeps them on disk, so memory
    does not grow with the file.
    """

    def claim(self, kind: str, keyed_lines: list[tuple[str, int]]) -> list[int | None]:
        """For each ``(key, line)``, in file order: the earlier line that holds ``key`` among keys of
        ``kind``, or ``None`` when this line is the first (and is remembered as such)."""
        ...


class PatientLookups(Protocol):
    """What import_patients looks up while it validates."""

    def existing_emails(self, emails: Iterable[str]) -> set[str]:
        """Which of these (lower-case) e-mails already belong to a user."""
        ...

    def existing_patient_ids(self, mrns: Iterable[str]) -> set[str]:
        """Which of these patient identifiers already exist (exact match)."""
        ...


class PatientImportStore(PatientLookups, Protocol):
    """The patients store: import_patients' lookups and inserts."""

    def insert_patients(self, patients: list[NewPatient], operation_id: int, now: datetime) -> None:
        """Create a User, a Patient and (when named) a Caregiver for each."""
        ...


class ConcurrentChange(Exception):
    """The database changed under a chunk since it was validated (another daemon admitted a patient to
    the same bed, say). Nothing of the file is committed; the pipeline validates it again."""


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


class NewAdmission(NamedTuple):
    """A validated bulk_assignment row (its payload)."""

    patient_id: int
    bed_id: int
    admitted_at: datetime
    reason: str
    chief_complaint: str | None
    event: CareEvent | None  # None: no notification for this row


class NewTransfer(NamedTuple):
    """A validated transfer_patients row (its payload): the stay moves from one bed to the other."""

    patient_id: int
    admission_id: int
    from_bed_id: int
    to_bed_id: int
    transferred_at: datetime
    reason: str
    event: CareEvent | None


class NewDischarge(NamedTuple):
    """A validated bulk_discharge row (its payload)."""

    patient_id: int
    admission_id: int
    bed_id: int
    discharged_at: datetime
    discharge_status: str
    discharge_notes: str | None
    event: CareEvent | None


@dataclass(frozen=True, slots=True)
class BedUpsert:
    """A validated sync_beds row: the bed's wanted state (None keeps what is there)."""

    code: str
    ward_code: str
    ward_name: str | None
    bed_number: str | None
    status: str | None
    existing_bed_id: int | None


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


class AdmissionLookups(Protocol):
    """What bulk_assignment, transfer_patients and bulk_discharge look up about patients' stays."""

    def patients_by_mrn(self, mrns: Iterable[str]) -> dict[str, PatientState]:
        """The known patients among ``mrns``, each with its active admission if any."""
        ...

    def last_transfers(self, admission_ids: Iterable[int]) -> dict[int, datetime]:
        """When each of these admissions last moved bed (its latest transfer); admissions that never
        moved are absent (their patient has been in the bed since ``admitted_at``)."""
        ...


class AdmissionStore(AdmissionLookups, Protocol):
    """The admissions store: patients' stays in beds, and the caregiver notifications they send."""

    def admit(self, admissions: list[NewAdmission], operation_id: int, now: datetime) -> None:
        """Insert the admissions and occupy their beds, only if still available (else ConcurrentChange)."""
        ...

    def transfer(self, transfers: list[NewTransfer], operation_id: int, now: datetime) -> None:
        """Move the stays: free each old bed, occupy each new one (only if still available), point the
        admission at it and record the transfer (ConcurrentChange if any of it changed since)."""
        ...

    def discharge(self, discharges: list[NewDischarge], operation_id: int, now: datetime) -> None:
        """Insert the discharges, end the admissions, free the beds (ConcurrentChange if already done)."""
        ...

    def notify(self, events: list[CareEvent], operation_id: int, now: datetime) -> list[NotificationLine]:
        """Record a notification per caregiver (or one 'skipped' without caregivers); return the lines."""
        ...


class BedRegistryLookups(Protocol):
    """What operations look up in the ward and bed registry while they validate."""

    def beds_by_code(self, codes: Iterable[str]) -> dict[str, BedState]:
        """The known beds among ``codes``, with their ward and status."""
        ...

    def wards_by_code(self, codes: Iterable[str]) -> dict[str, WardState]:
        """The known wards among ``codes``."""
        ...


class BedRegistryStore(BedRegistryLookups, Protocol):
    """The beds store: the ward and bed registry that sync_beds maintains."""

    def upsert_beds(self, beds: list[BedUpsert], now: datetime) -> None:
        """Create missing wards and beds, update existing ones (ConcurrentChange if one became occupied)."""
        ...


class ReportWriter(Protocol):
    """The reports store: builds a report in the file's transaction and writes it."""

    def write_report(self, request: ReportRequest, file_name: str) -> int:
        """Write the report under ``file_name`` in ``outbox/reports/``, unpublished until the file's
        transaction commits; returns its rows."""
        ...


class Lookups(Protocol):
    """The named stores of phase 1, read-only: what ``OperationRun.validate`` may call."""

    @property
    def patients(self) -> PatientLookups: ...

    @property
    def admissions(self) -> AdmissionLookups: ...

    @property
    def beds(self) -> BedRegistryLookups: ...


class Stores(Lookups, Protocol):
    """The named stores of phase 2, on the file's one transaction: what ``OperationRun.apply`` may call."""

    @property
    def patients(self) -> PatientImportStore: ...

    @property
    def admissions(self) -> AdmissionStore: ...

    @property
    def beds(self) -> BedRegistryStore: ...

    @property
    def reports(self) -> ReportWriter: ...

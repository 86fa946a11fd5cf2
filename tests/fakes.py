"""In-memory stores for the operations' rule tests: one fake that implements every room's store port.

A ``FakeWard`` is the whole database: the wards, beds and patients the lookups see, and every write the
stores were asked for, in order. ``FakeStores(ward)`` is every room's store on it (``PatientImportStore``,
``AssignmentStore``, ``TransferStore``, ``DischargeStore``, ``BedRegistryStore`` and ``ReportWriter``), to
pass to ``run.validate`` and ``run.apply``. Writes change the ward as the SQL stores change the database,
and a write the database would refuse (a bed taken since validation) raises ``ConcurrentChange`` as they
do. ``ward.lookups`` counts the lookups per method: one per chunk, as the SQL stores query once per chunk.

The helpers below read a CSV text the way the pipeline does and summarise outcomes for assertions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from processor.core.csv_reading import Record, read_csv
from processor.core.operation_types import BedStatus
from processor.core.report_request import ReportRequest, ReportWriter
from processor.errors import ConcurrentChange
from processor.operations.base import OperationRun, RowOutcome, Rules, RunContext
from processor.operations.bulk_assignment.ports import AssignmentStore, NewAdmission
from processor.operations.bulk_discharge.ports import DischargeStore, NewDischarge
from processor.operations.import_patients.ports import NewPatient, PatientImportStore
from processor.operations.ports import BedState, CareEvent, NotificationLine, PatientState, WardState
from processor.operations.sync_beds.ports import BedRegistryStore, BedUpsert
from processor.operations.transfer_patients.ports import NewTransfer, TransferStore

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
OPERATION_ID = 7


@dataclass(frozen=True)
class Caregiver:
    name: str
    email: str = ""
    phone: str = ""


@dataclass
class FakeWard:
    """The fake database: what the lookups find, and what the stores were asked to write."""

    emails: set[str] = field(default_factory=set)
    patients: dict[str, PatientState] = field(default_factory=dict)  # by patient_id (MRN)
    beds: dict[str, BedState] = field(default_factory=dict)  # by bed_id (code)
    wards: dict[str, WardState] = field(default_factory=dict)  # by code
    caregivers: dict[int, list[Caregiver]] = field(default_factory=dict)  # by patient key
    inserted: list[NewPatient] = field(default_factory=list)
    admitted: list[NewAdmission] = field(default_factory=list)
    discharged: list[NewDischarge] = field(default_factory=list)
    transferred: list[NewTransfer] = field(default_factory=list)
    last_moved: dict[int, datetime] = field(default_factory=dict)  # admission key → its latest transfer
    notified: list[CareEvent] = field(default_factory=list)
    upserted: list[BedUpsert] = field(default_factory=list)
    reports: list[tuple[ReportRequest, str]] = field(default_factory=list)
    lookups: Counter[str] = field(default_factory=Counter)
    _last_id: int = 0

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    @property
    def writes(self) -> list[object]:
        """Everything written, whatever the store: empty after a validation."""
        return [
            *self.inserted,
            *self.admitted,
            *self.discharged,
            *self.transferred,
            *self.notified,
            *self.upserted,
            *self.reports,
        ]

    def add_ward(self, code: str, name: str | None = None) -> WardState:
        ward = WardState(self.next_id(), code, name or code)
        self.wards[code] = ward
        return ward

    def add_bed(self, code: str, ward: str = "CARD", status: str = BedStatus.AVAILABLE.value) -> BedState:
        """A bed in ``ward`` (created if new), numbered by its code's last part (CARD-01: 01)."""
        ward_id = (self.wards.get(ward) or self.add_ward(ward)).id
        number = code.rsplit("-", maxsplit=1)[-1]
        bed = BedState(self.next_id(), code, ward_id, ward, number, status, None)
        self.beds[code] = bed
        return bed

    def add_patient(
        self, mrn: str, email: str | None = None, in_bed: str | None = None, since: datetime | None = None
    ) -> PatientState:
        """A patient; ``in_bed`` admits them to that (existing) bed ``since`` then (default: a week ago)."""
        patient = PatientState(self.next_id(), mrn, None, None, None, None, None, None)
        self.patients[mrn] = patient
        if email:
            self.emails.add(email)
        if in_bed:
            self.occupy(patient, self.beds[in_bed], since or datetime(2026, 11, 19, tzinfo=UTC))
        return self.patients[mrn]

    def add_caregiver(self, mrn: str, caregiver: Caregiver) -> None:
        self.caregivers.setdefault(self.patients[mrn].id, []).append(caregiver)

    def bed_by_id(self, bed_id: int) -> BedState:
        return next(bed for bed in self.beds.values() if bed.id == bed_id)

    def patient_by_id(self, patient_id: int) -> PatientState:
        return next(patient for patient in self.patients.values() if patient.id == patient_id)

    def occupy(self, patient: PatientState, bed: BedState, at: datetime) -> None:
        """Admit ``patient`` to ``bed`` at ``at``."""
        self.beds[bed.code] = replace(bed, status=BedStatus.OCCUPIED.value, current_patient_id=patient.id)
        self.patients[patient.mrn] = replace(
            patient,
            admission_id=self.next_id(),
            admitted_at=at,
            bed_id=bed.id,
            bed_code=bed.code,
            ward_code=bed.ward_code,
            bed_patient_id=patient.id,
        )

    def move(self, patient: PatientState, to: BedState, at: datetime) -> None:
        """Move ``patient``'s stay to bed ``to`` at ``at``: the old bed freed, the admission kept."""
        assert patient.bed_code is not None and patient.admission_id is not None
        old = self.beds[patient.bed_code]
        self.beds[old.code] = replace(old, status=BedStatus.AVAILABLE.value, current_patient_id=None)
        self.beds[to.code] = replace(to, status=BedStatus.OCCUPIED.value, current_patient_id=patient.id)
        self.patients[patient.mrn] = replace(
            patient, bed_id=to.id, bed_code=to.code, ward_code=to.ward_code, bed_patient_id=patient.id
        )
        self.last_moved[patient.admission_id] = at

    def release(self, patient: PatientState) -> None:
        """End ``patient``'s admission and free the bed."""
        assert patient.bed_code is not None
        bed = self.beds[patient.bed_code]
        self.beds[bed.code] = replace(bed, status=BedStatus.AVAILABLE.value, current_patient_id=None)
        self.patients[patient.mrn] = PatientState(patient.id, patient.mrn, None, None, None, None, None, None)


def _found(ward: FakeWard, method: str, table: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """One counted lookup of ``keys`` in ``table``: the ones that exist."""
    ward.lookups[method] += 1
    return {key: table[key] for key in set(keys) if key in table}


@dataclass
class FakePatientStore:
    """``PatientImportStore`` on a ``FakeWard``."""

    ward: FakeWard

    def existing_emails(self, emails: Iterable[str]) -> set[str]:
        self.ward.lookups["existing_emails"] += 1
        return set(emails) & self.ward.emails

    def existing_patient_ids(self, mrns: Iterable[str]) -> set[str]:
        return set(_found(self.ward, "existing_patient_ids", self.ward.patients, mrns))

    def insert_patients(self, patients: list[NewPatient], operation_id: int, now: datetime) -> None:
        self.ward.inserted.extend(patients)
        for patient in patients:
            self.ward.add_patient(patient.mrn, patient.email)
            if patient.caregiver_name:
                caregiver = Caregiver(
                    patient.caregiver_name, patient.caregiver_email or "", patient.caregiver_phone or ""
                )
                self.ward.add_caregiver(patient.mrn, caregiver)


@dataclass
class FakeAdmissionStore:
    """``AdmissionStore`` on a ``FakeWard``."""

    ward: FakeWard

    def patients_by_mrn(self, mrns: Iterable[str]) -> dict[str, PatientState]:
        return _found(self.ward, "patients_by_mrn", self.ward.patients, mrns)

    def admit(self, admissions: list[NewAdmission], operation_id: int, now: datetime) -> None:
        beds = [self.ward.bed_by_id(admission.bed_id) for admission in admissions]
        if any(bed.status != BedStatus.AVAILABLE for bed in beds):
            raise ConcurrentChange("a bed was taken since validation")
        for admission, bed in zip(admissions, beds, strict=True):
            self.ward.occupy(self.ward.patient_by_id(admission.patient_id), bed, admission.admitted_at)
        self.ward.admitted.extend(admissions)

    def last_transfers(self, admission_ids: Iterable[int]) -> dict[int, datetime]:
        self.ward.lookups["last_transfers"] += 1
        return {key: self.ward.last_moved[key] for key in set(admission_ids) if key in self.ward.last_moved}

    def transfer(self, transfers: list[NewTransfer], operation_id: int, now: datetime) -> None:
        """What the SQL store's conditional updates refuse: a patient no longer in the bed they left, an
        admission no longer active, or a target bed no longer available."""
        moves = [
            (
                self.ward.patient_by_id(t.patient_id),
                self.ward.bed_by_id(t.from_bed_id),
                self.ward.bed_by_id(t.to_bed_id),
            )
            for t in transfers
        ]
        for transfer, (patient, left, to) in zip(transfers, moves, strict=True):
            stale = patient.admission_id != transfer.admission_id or left.current_patient_id != patient.id
            if stale or to.status != BedStatus.AVAILABLE:
                raise ConcurrentChange("a stay or a bed changed since validation")
        for transfer, (patient, _, to) in zip(transfers, moves, strict=True):
            self.ward.move(patient, to, transfer.transferred_at)
        self.ward.transferred.extend(transfers)

    def discharge(self, discharges: list[NewDischarge], operation_id: int, now: datetime) -> None:
        patients = [self.ward.patient_by_id(discharge.patient_id) for discharge in discharges]
        stale = [p for p, d in zip(patients, discharges, strict=True) if p.admission_id != d.admission_id]
        if stale:
            raise ConcurrentChange("an admission ended since validation")
        for patient in patients:
            self.ward.release(patient)
        self.ward.discharged.extend(discharges)

    def notify(
        self, events: list[CareEvent], operation_id: int, now: datetime, email: bool
    ) -> list[NotificationLine]:
        self.ward.notified.extend(events)
        return [line for event in events for line in self._lines(event, email)]

    def _lines(self, event: CareEvent, email: bool) -> list[NotificationLine]:
        """A queued (or e-mailed) line per caregiver, or one skipped line, as the SQL store writes them."""
        where = (event.kind, event.ward_code, event.bed_code, event.at.isoformat())
        caregivers = self.ward.caregivers.get(event.patient_id, [])
        if not caregivers:
            return [NotificationLine(event.mrn, "", "", "", *where, "skipped")]
        return [
            NotificationLine(
                event.mrn,
                c.name,
                c.email,
                c.phone,
                *where,
                "email_pending" if email and c.email else "queued",
            )
            for c in caregivers
        ]


@dataclass
class FakeBedRegistry:
    """``BedRegistryStore`` on a ``FakeWard``."""

    ward: FakeWard

    def beds_by_code(self, codes: Iterable[str]) -> dict[str, BedState]:
        return _found(self.ward, "beds_by_code", self.ward.beds, codes)

    def wards_by_code(self, codes: Iterable[str]) -> dict[str, WardState]:
        return _found(self.ward, "wards_by_code", self.ward.wards, codes)

    def upsert_beds(self, beds: list[BedUpsert], now: datetime) -> None:
        for bed in beds:
            if bed.existing_bed_id is not None and self._would_move_occupied(bed):
                raise ConcurrentChange("a bed became occupied since validation")
        self.ward.upserted.extend(beds)
        for bed in beds:
            self._upsert(bed)

    def _would_move_occupied(self, upsert: BedUpsert) -> bool:
        """What the SQL store's conditional update refuses: an occupied bed's new status or ward."""
        bed = self.ward.beds[upsert.code]
        changes = upsert.status is not None or upsert.ward_code != bed.ward_code
        return bed.status == BedStatus.OCCUPIED and changes

    def _upsert(self, upsert: BedUpsert) -> None:
        ward = self.ward.wards.get(upsert.ward_code) or self.ward.add_ward(upsert.ward_code, upsert.ward_name)
        if upsert.ward_name and upsert.ward_name != ward.name:
            self.ward.wards[ward.code] = replace(ward, name=upsert.ward_name)
        old = self.ward.beds.get(upsert.code)
        if old is None:
            number, status = upsert.bed_number or upsert.code, upsert.status or BedStatus.AVAILABLE.value
            self.ward.beds[upsert.code] = BedState(
                self.ward.next_id(), upsert.code, ward.id, ward.code, number, status, None
            )
            return
        self.ward.beds[upsert.code] = replace(
            old,
            ward_id=ward.id,
            ward_code=ward.code,
            bed_number=upsert.bed_number or old.bed_number,
            status=upsert.status or old.status,
        )


@dataclass
class FakeReportWriter:
    """``ReportWriter`` on a ``FakeWard``: records the requests; every report has ``rows`` rows."""

    ward: FakeWard
    rows: int = 0

    def write_report(self, request: ReportRequest, file_name: str) -> int:
        self.ward.reports.append((request, file_name))
        return self.rows


class FakeStores(FakePatientStore, FakeAdmissionStore, FakeBedRegistry, FakeReportWriter):
    """Every room's store on one ``FakeWard`` (a new, empty one by default)."""

    def __init__(self, ward: FakeWard | None = None) -> None:
        super().__init__(ward if ward is not None else FakeWard())


if TYPE_CHECKING:  # mypy checks the fake against every port it stands in for
    _imports: PatientImportStore = FakeStores()
    _assigns: AssignmentStore = FakeStores()
    _transfers: TransferStore = FakeStores()
    _discharges: DischargeStore = FakeStores()
    _beds: BedRegistryStore = FakeStores()
    _reports: ReportWriter = FakeStores()


# --- reading files and looking at outcomes ---


def records_of(operation: Rules, text: str) -> list[Record]:
    """The records of a CSV text (header first), as the pipeline reads them for ``operation``."""
    return list(read_csv(iter(text.splitlines(keepends=True)), operation.spec).records)


def start(operation: Rules, notify: bool = False) -> OperationRun[Any, Any]:
    """A fresh run of operation ``OPERATION_ID`` at ``NOW``, its first lines kept in memory."""
    return operation.start(RunContext(OPERATION_ID, NOW, notify))


def validated(operation: Rules, text: str, stores: FakeStores, notify: bool = False) -> list[RowOutcome]:
    """Validate a whole CSV text as one chunk of a fresh run."""
    return start(operation, notify).validate(records_of(operation, text), stores)


def problems(outcomes: list[RowOutcome]) -> list[tuple[int | None, str, str]]:
    """``(line, column, code)`` of every row error, in order."""
    return [(error.line, error.column, error.code.value) for o in outcomes for error in o.errors]


def messages(outcomes: list[RowOutcome]) -> list[str]:
    return [error.message for outcome in outcomes for error in outcome.errors]


def payloads(outcomes: list[RowOutcome]) -> list[Any]:
    """The payloads of the valid rows, in order: what the spool would hold."""
    return [outcome.payload for outcome in outcomes if outcome.ok]

"""The operations' named stores (``operations.ports``), implemented with batched Core SQL on one connection.

Every method handles a whole chunk: lookups are one ``IN (...)`` query, inserts one executemany (or COPY).
``SqlStores`` puts the named stores of one connection together; the unit of work builds it on the
file's transaction, the read-only unit of work on a plain connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, String, and_, bindparam, func, insert, or_, select, update

from processor.adapters.database.bulk import expect_changed, insert_rows, is_among, reserve_ids, values_table
from processor.adapters.database.models import (
    Caregiver,
    Patient,
    PatientAdmission,
    PatientDischarge,
    PatientNotification,
    User,
    Ward,
    WardBed,
)
from processor.adapters.database.transfers import last_transfers, transfer_stays
from processor.core.operation_types import BedStatus
from processor.core.report_request import ReportRequest
from processor.operations.ports import (
    BedState,
    BedUpsert,
    CareEvent,
    NewAdmission,
    NewDischarge,
    NewPatient,
    NewTransfer,
    NotificationLine,
    PatientState,
    ReportWriter,
    WardState,
)


class SqlPatientStore:
    """The ``patients`` store (``PatientImportStore``): users, patients and caregivers."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def existing_emails(self, emails: Iterable[str]) -> set[str]:
        wanted = list(set(emails))
        if not wanted:
            return set()
        query = select(User.email).where(is_among(self.connection, User.email, wanted))
        return {email for email in self.connection.execute(query).scalars() if email is not None}

    def existing_patient_ids(self, mrns: Iterable[str]) -> set[str]:
        wanted = list(set(mrns))
        if not wanted:
            return set()
        return set(
            self.connection.execute(
                select(Patient.mrn).where(is_among(self.connection, Patient.mrn, wanted))
            ).scalars()
        )

    def insert_patients(self, patients: list[NewPatient], operation_id: int, now: datetime) -> None:
        """A User, a Patient and (when named) a Caregiver per row, linked by keys reserved up front."""
        if not patients:
            return
        user_ids = reserve_ids(self.connection, User, len(patients))
        patient_ids = reserve_ids(self.connection, Patient, len(patients))
        insert_rows(
            self.connection,
            User,
            ("id", "username", "email", "first_name", "last_name"),
            (
                (user_id, f"patient:{p.mrn}", p.email, p.first_name, p.last_name)
                for p, user_id in zip(patients, user_ids, strict=True)
            ),
            shared={"is_active": True, "created_at": now},
        )
        insert_rows(
            self.connection,
            Patient,
            ("id", "user_id", "mrn", "phone", "date_of_birth", "gender"),
            (
                (patient_id, user_id, p.mrn, p.phone, p.date_of_birth, p.gender)
                for p, user_id, patient_id in zip(patients, user_ids, patient_ids, strict=True)
            ),
            shared={"created_at": now, "bulk_operation_id": operation_id},
        )
        insert_rows(
            self.connection,
            Caregiver,
            ("patient_id", "name", "email", "phone"),
            (
                (patient_id, p.caregiver_name, p.caregiver_email, p.caregiver_phone)
                for p, patient_id in zip(patients, patient_ids, strict=True)
                if p.caregiver_name
            ),
            shared={"created_at": now},
        )


class SqlAdmissionStore:
    """The ``admissions`` store (``AdmissionStore``): patients' stays in beds, and their notifications.

    Transfers are written by ``transfers``, the SQL of transfer_patients."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def patients_by_mrn(self, mrns: Iterable[str]) -> dict[str, PatientState]:
        wanted = list(set(mrns))
        if not wanted:
            return {}
        active = PatientAdmission.is_active.is_(True)
        query = (
            select(
                Patient.id,
                Patient.mrn,
                PatientAdmission.id,
                PatientAdmission.admitted_at,
                PatientAdmission.bed_id,
                WardBed.code,
                Ward.code,
                WardBed.current_patient_id,
            )
            .outerjoin(PatientAdmission, and_(PatientAdmission.patient_id == Patient.id, active))
            .outerjoin(WardBed, WardBed.id == PatientAdmission.bed_id)
            .outerjoin(Ward, Ward.id == WardBed.ward_id)
            .where(is_among(self.connection, Patient.mrn, wanted))
        )
        return {row[1]: PatientState(*row) for row in self.connection.execute(query)}

    def admit(self, admissions: list[NewAdmission], operation_id: int, now: datetime) -> None:
        if not admissions:
            return
        chunk = values_table(
            self.connection,
            {"bed": Integer(), "patient": Integer()},
            [(a.bed_id, a.patient_id) for a in admissions],
        )
        occupy = (
            update(WardBed)
            .where(WardBed.id == chunk.c.bed, WardBed.status == BedStatus.AVAILABLE.value)
            .values(status=BedStatus.OCCUPIED.value, current_patient_id=chunk.c.patient, updated_at=now)
        )
        expect_changed(self.connection, occupy, len(admissions))
        insert_rows(
            self.connection,
            PatientAdmission,
            ("patient_id", "bed_id", "admitted_at", "reason", "chief_complaint"),
            ((a.patient_id, a.bed_id, a.admitted_at, a.reason, a.chief_complaint) for a in admissions),
            shared={"is_active": True, "bulk_operation_id": operation_id, "created_at": now},
        )

    def last_transfers(self, admission_ids: Iterable[int]) -> dict[int, datetime]:
        return last_transfers(self.connection, admission_ids)

    def transfer(self, transfers: list[NewTransfer], operation_id: int, now: datetime) -> None:
        transfer_stays(self.connection, transfers, operation_id, now)

    def discharge(self, discharges: list[NewDischarge], operation_id: int, now: datetime) -> None:
        if not discharges:
            return
        chunk = values_table(
            self.connection,
            {"admission": Integer(), "bed": Integer(), "patient": Integer()},
            [(d.admission_id, d.bed_id, d.patient_id) for d in discharges],
        )
        end_admission = (
            update(PatientAdmission)
            .where(PatientAdmission.id == chunk.c.admission, PatientAdmission.is_active.is_(True))
            .values(is_active=False)
        )
        expect_changed(self.connection, end_admission, len(discharges))
        release = (
            update(WardBed)
            .where(WardBed.id == chunk.c.bed, WardBed.current_patient_id == chunk.c.patient)
            .values(status=BedStatus.AVAILABLE.value, current_patient_id=None, updated_at=now)
        )
        expect_changed(self.connection, release, len(discharges))
        insert_rows(
            self.connection,
            PatientDischarge,
            ("admission_id", "patient_id", "discharged_at", "discharge_status", "discharge_notes"),
            (
                (d.admission_id, d.patient_id, d.discharged_at, d.discharge_status, d.discharge_notes)
                for d in discharges
            ),
            shared={"bulk_operation_id": operation_id, "created_at": now},
        )

    def notify(self, events: list[CareEvent], operation_id: int, now: datetime) -> list[NotificationLine]:
        if not events:
            return []
        patient_ids = list({event.patient_id for event in events})
        caregivers: dict[int, list[Any]] = {}
        query = select(Caregiver.id, Caregiver.patient_id, Caregiver.name, Caregiver.email, Caregiver.phone)
        for row in self.connection.execute(
            query.where(is_among(self.connection, Caregiver.patient_id, patient_ids))
        ):
            caregivers.setdefault(row.patient_id, []).append(row)
        records, lines = [], []
        for event in events:
            for record, line in _notifications(
                event, caregivers.get(event.patient_id, []), operation_id, now
            ):
                records.append(record)
                lines.append(line)
        self.connection.execute(insert(PatientNotification), records)
        return lines


class SqlBedRegistry:
    """The ``beds`` store (``BedRegistryStore``): the ward and bed registry."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def beds_by_code(self, codes: Iterable[str]) -> dict[str, BedState]:
        wanted = list(set(codes))
        if not wanted:
            return {}
        query = (
            select(
                WardBed.id,
                WardBed.code,
                WardBed.ward_id,
                Ward.code,
                WardBed.bed_number,
                WardBed.status,
                WardBed.current_patient_id,
            )
            .join(Ward, Ward.id == WardBed.ward_id)
            .where(is_among(self.connection, WardBed.code, wanted))
        )
        return {row[1]: BedState(*row) for row in self.connection.execute(query)}

    def wards_by_code(self, codes: Iterable[str]) -> dict[str, WardState]:
        wanted = list(set(codes))
        if not wanted:
            return {}
        query = select(Ward.id, Ward.code, Ward.name).where(is_among(self.connection, Ward.code, wanted))
        return {row[1]: WardState(*row) for row in self.connection.execute(query)}

    def upsert_beds(self, beds: list[BedUpsert], now: datetime) -> None:
        if not beds:
            return
        ward_ids = self._upsert_wards(beds, now)
        new = [
            {
                "code": b.code,
                "ward_id": ward_ids[b.ward_code],
                "bed_number": b.bed_number or b.code,
                "status": b.status or BedStatus.AVAILABLE.value,
                "current_patient_id": None,
                "updated_at": now,
            }
            for b in beds
            if b.existing_bed_id is None
        ]
        if new:
            self.connection.execute(insert(WardBed), new)
        existing = [
            {
                "bed": b.existing_bed_id,
                "ward": ward_ids[b.ward_code],
                "number": b.bed_number,
                "status": b.status,
                "now": now,
            }
            for b in beds
            if b.existing_bed_id is not None
        ]
        if existing:
            expect_changed(self.connection, _bed_update(), len(existing), existing)

    def _upsert_wards(self, beds: list[BedUpsert], now: datetime) -> dict[str, int]:
        names = {b.ward_code: b.ward_name for b in beds}
        for b in beds:  # a name given on any row of the ward wins over a row without one
            names[b.ward_code] = b.ward_name or names[b.ward_code]
        known = self.wards_by_code(names)
        missing = [
            {"code": code, "name": name or code, "is_active": True, "created_at": now}
            for code, name in names.items()
            if code not in known
        ]
        if missing:
            self.connection.execute(insert(Ward), missing)
        renamed = [
            {"ward": known[code].id, "name": name}
            for code, name in names.items()
            if code in known and name and name != known[code].name
        ]
        if renamed:
            self.connection.execute(
                update(Ward).where(Ward.id == bindparam("ward")).values(name=bindparam("name")), renamed
            )
        return {code: ward.id for code, ward in self.wards_by_code(names).items()}


def _bed_update() -> Any:
    """Update an existing bed; an occupied bed only when its ward and status stay as they are."""
    status = bindparam("status", type_=String)
    ward = bindparam("ward", type_=Integer)
    unchanged_occupancy = and_(WardBed.ward_id == ward, status.is_(None))
    return (
        update(WardBed)
        .where(
            WardBed.id == bindparam("bed"),
            or_(WardBed.status != BedStatus.OCCUPIED.value, unchanged_occupancy),
        )
        .values(
            ward_id=ward,
            bed_number=func.coalesce(bindparam("number", type_=String), WardBed.bed_number),
            status=func.coalesce(status, WardBed.status),
            updated_at=bindparam("now"),
        )
    )


def _notifications(
    event: CareEvent, caregivers: list[Any], operation_id: int, now: datetime
) -> list[tuple[dict[str, Any], NotificationLine]]:
    """One queued notification per caregiver, or one 'skipped' record for a patient without any."""
    base = {
        "patient_id": event.patient_id,
        "kind": event.kind,
        "bulk_operation_id": operation_id,
        "created_at": now,
    }
    at = event.at.isoformat()
    if not caregivers:
        line = NotificationLine(
            event.mrn, "", "", "", event.kind, event.ward_code, event.bed_code, at, "skipped"
        )
        return [(base | {"caregiver_id": None, "status": "skipped"}, line)]
    return [
        (
            base | {"caregiver_id": c.id, "status": "queued"},
            NotificationLine(
                event.mrn,
                c.name,
                c.email or "",
                c.phone or "",
                event.kind,
                event.ward_code,
                event.bed_code,
                at,
                "queued",
            ),
        )
        for c in caregivers
    ]


class NoReports:
    """The ``reports`` store of stores built without a report writer: any report it is asked for is a
    wiring mistake, so it says so instead of writing nothing."""

    def write_report(self, request: ReportRequest, file_name: str) -> int:
        raise RuntimeError("these stores were built without a report writer (UnitOfWork(reports=...))")


class SqlStores:
    """The named stores on one connection (a ``Stores``, and so also a ``Lookups``).

    ``reports`` writes the reports of export operations; without one, asking for a report fails.
    """

    def __init__(self, connection: Connection, reports: ReportWriter | None = None) -> None:
        self.connection = connection
        self.patients = SqlPatientStore(connection)
        self.admissions = SqlAdmissionStore(connection)
        self.beds = SqlBedRegistry(connection)
        self.reports: ReportWriter = reports or NoReports()

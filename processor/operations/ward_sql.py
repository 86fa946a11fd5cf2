"""The SQL of the lookups the ward operations share (``operations.ports``), and of caregiver notifications.

``SqlWard`` works on one connection: the pipeline builds a room's store on a plain connection for
validation (typed as its lookups) and on the file's transaction for apply. The rooms' own SQL stores
(``<room>/sql.py``) extend it with their writes. Every method handles a whole chunk: one ``IN (...)``
query for a lookup, one executemany (or COPY) for an insert.
A lookup's rows are fetched all at once (``.all()``): row by row, the fetching cost more than the query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select

from processor.adapters.database.bulk import is_among
from processor.adapters.database.models import (
    Caregiver,
    Patient,
    PatientAdmission,
    PatientNotification,
    Ward,
    WardBed,
)
from processor.operations.ports import BedState, CareEvent, NotificationLine, PatientState, WardState


class SqlWard:
    """Patients with their stays, beds and wards by their codes, and caregiver notifications."""

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
        return {row[1]: PatientState(*row) for row in self.connection.execute(query).all()}

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
        return {row[1]: BedState(*row) for row in self.connection.execute(query).all()}

    def wards_by_code(self, codes: Iterable[str]) -> dict[str, WardState]:
        wanted = list(set(codes))
        if not wanted:
            return {}
        query = select(Ward.id, Ward.code, Ward.name).where(is_among(self.connection, Ward.code, wanted))
        return {row[1]: WardState(*row) for row in self.connection.execute(query).all()}

    def notify(
        self, events: list[CareEvent], operation_id: int, now: datetime, email: bool
    ) -> list[NotificationLine]:
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
                event, caregivers.get(event.patient_id, []), operation_id, now, email
            ):
                records.append(record)
                lines.append(line)
        self.connection.execute(insert(PatientNotification), records)
        return lines


def _notifications(
    event: CareEvent, caregivers: list[Any], operation_id: int, now: datetime, email: bool
) -> list[tuple[dict[str, Any], NotificationLine]]:
    """One notification per caregiver (``email_pending`` when wardbulk e-mails it, else ``queued``),
    or one 'skipped' record for a patient without any."""
    base = {
        "patient_id": event.patient_id,
        "kind": event.kind,
        "bulk_operation_id": operation_id,
        "created_at": now,
        "ward_code": event.ward_code,
        "bed_code": event.bed_code,
        "event_at": event.at,
    }
    at = event.at.isoformat()
    if not caregivers:
        line = NotificationLine(
            event.mrn, "", "", "", event.kind, event.ward_code, event.bed_code, at, "skipped"
        )
        return [(base | {"caregiver_id": None, "status": "skipped"}, line)]
    return [
        (
            base | {"caregiver_id": c.id, "status": _status(c.email, email)},
            NotificationLine(
                event.mrn,
                c.name,
                c.email or "",
                c.phone or "",
                event.kind,
                event.ward_code,
                event.bed_code,
                at,
                _status(c.email, email),
            ),
        )
        for c in caregivers
    ]


def _status(address: str | None, email: bool) -> str:
    return "email_pending" if email and address else "queued"

"""The operations' database ports, implemented with batched Core SQL on one connection.

Every method handles a whole chunk: lookups are one ``IN (...)`` query, inserts one executemany.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, insert, select

from processor.adapters.database.models import Caregiver, Patient, User
from processor.operations.ports import NewPatient


class SqlWardStore:
    """Implements ``PatientImportStore`` (and, as operations arrive, their other ports)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def existing_emails(self, emails: Iterable[str]) -> set[str]:
        wanted = list(set(emails))
        if not wanted:
            return set()
        query = select(User.email).where(User.email.in_(wanted))
        return {email for email in self.connection.execute(query).scalars() if email is not None}

    def existing_patient_ids(self, mrns: Iterable[str]) -> set[str]:
        wanted = list(set(mrns))
        if not wanted:
            return set()
        return set(self.connection.execute(select(Patient.mrn).where(Patient.mrn.in_(wanted))).scalars())

    def insert_patients(self, patients: list[NewPatient], operation_id: int, now: datetime) -> None:
        if not patients:
            return
        user_ids = self._insert_users(patients, now)
        patient_ids = self._insert_patient_rows(patients, user_ids, operation_id, now)
        caregivers = [
            {
                "patient_id": patient_id,
                "name": p.caregiver_name,
                "email": p.caregiver_email,
                "phone": p.caregiver_phone,
                "created_at": now,
            }
            for p, patient_id in zip(patients, patient_ids, strict=True)
            if p.caregiver_name
        ]
        if caregivers:
            self.connection.execute(insert(Caregiver), caregivers)

    def _insert_users(self, patients: list[NewPatient], now: datetime) -> list[int]:
        rows = [
            {
                "username": p.email,
                "email": p.email,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "is_active": True,
                "created_at": now,
            }
            for p in patients
        ]
        statement = insert(User).returning(User.id, sort_by_parameter_order=True)
        return list(self.connection.execute(statement, rows).scalars())

    def _insert_patient_rows(
        self, patients: list[NewPatient], user_ids: list[int], operation_id: int, now: datetime
    ) -> list[int]:
        rows = [
            {
                "user_id": user_id,
                "mrn": p.mrn,
                "phone": p.phone,
                "date_of_birth": p.date_of_birth,
                "gender": p.gender,
                "created_at": now,
                "bulk_operation_id": operation_id,
            }
            for p, user_id in zip(patients, user_ids, strict=True)
        ]
        statement = insert(Patient).returning(Patient.id, sort_by_parameter_order=True)
        return list(self.connection.execute(statement, rows).scalars())

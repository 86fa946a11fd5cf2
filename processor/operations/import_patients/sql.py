"""The SQL of import_patients: users, patients and caregivers, inserted in bulk."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select

from processor.adapters.database.bulk import insert_rows, is_among, reserve_ids
from processor.adapters.database.models import Caregiver, Patient, User
from processor.operations.import_patients.ports import NewPatient


class SqlPatientStore:
    """import_patients' store (``PatientImportStore``): users, patients and caregivers."""

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

"""The SQL of import_patients: users, patients and caregivers, inserted in bulk; in upsert mode, the
changed values updated one column at a time for a whole chunk, each only where it still holds what
validation saw, and written to the audit trail."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Integer, func, insert, literal, select, update

from processor.adapters.database.audit import Change, record_changes
from processor.adapters.database.base import Base
from processor.adapters.database.bulk import expect_changed, insert_rows, is_among, reserve_ids, values_table
from processor.adapters.database.models import Caregiver, Patient, User
from processor.errors import ConcurrentChange
from processor.operations.import_patients.ports import (
    CurrentCaregiver,
    CurrentPatient,
    FieldChange,
    NewCaregiver,
    NewPatient,
    PatientUpdate,
)

TABLES: dict[str, type[Base]] = {"users": User, "patients": Patient, "caregivers": Caregiver}


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

    def email_owners(self, emails: Iterable[str]) -> dict[str, int]:
        wanted = list(set(emails))
        if not wanted:
            return {}
        query = select(User.email, User.id).where(is_among(self.connection, User.email, wanted))
        return {email: user_id for email, user_id in self.connection.execute(query) if email is not None}

    def current_patients(self, mrns: Iterable[str]) -> dict[str, CurrentPatient]:
        wanted = list(set(mrns))
        if not wanted:
            return {}
        query = (
            select(
                Patient.mrn,
                Patient.id,
                Patient.user_id,
                User.first_name,
                User.last_name,
                User.email,
                Patient.phone,
                Patient.date_of_birth,
                Patient.gender,
            )
            .join(User, User.id == Patient.user_id)
            .where(is_among(self.connection, Patient.mrn, wanted))
        )
        rows = self.connection.execute(query).all()
        caregivers = self._caregivers_of([row.id for row in rows])
        return {row.mrn: CurrentPatient(*row[1:], caregivers=tuple(caregivers[row.id])) for row in rows}

    def _caregivers_of(self, patient_ids: list[int]) -> dict[int, list[CurrentCaregiver]]:
        found: dict[int, list[CurrentCaregiver]] = defaultdict(list)
        if not patient_ids:
            return found
        query = (
            select(Caregiver.patient_id, Caregiver.id, Caregiver.name, Caregiver.email, Caregiver.phone)
            .where(is_among(self.connection, Caregiver.patient_id, patient_ids))
            .order_by(Caregiver.id)
        )
        for patient_id, caregiver_id, name, email, phone in self.connection.execute(query):
            found[patient_id].append(CurrentCaregiver(caregiver_id, name, email, phone))
        return found

    def update_patients(self, updates: list[PatientUpdate], operation_id: int, now: datetime) -> None:
        by_column: dict[tuple[str, str], list[FieldChange]] = defaultdict(list)
        for change in (change for update_ in updates for change in update_.changes):
            by_column[change.table, change.column].append(change)
        for (table, column), changes in by_column.items():
            self._change_column(TABLES[table], column, changes)
        added = self._add_caregivers([u.new_caregiver for u in updates if u.new_caregiver is not None], now)
        record_changes(self.connection, _trail(updates, added), operation_id, now)

    def _add_caregivers(self, caregivers: list[NewCaregiver], now: datetime) -> dict[int, int]:
        """Add each caregiver where its patient still has the caregivers validation counted (else
        ConcurrentChange: another writer may have added one of the same name); patient → new id."""
        if not caregivers:
            return {}
        ids = reserve_ids(self.connection, Caregiver, len(caregivers))
        chunk = values_table(
            self.connection,
            {
                "id": Integer(),
                "patient_id": Integer(),
                "seen": Integer(),
                "name": Caregiver.name.type,
                "email": Caregiver.email.type,
                "phone": Caregiver.phone.type,
            },
            [
                (i, c.patient_id, c.caregivers_seen, c.name, c.email, c.phone)
                for i, c in zip(ids, caregivers, strict=True)
            ],
        )
        has_now = select(func.count()).where(Caregiver.patient_id == chunk.c.patient_id).scalar_subquery()
        columns = ("id", "patient_id", "name", "email", "phone")
        rows = select(*(chunk.c[name] for name in columns), literal(now, Caregiver.created_at.type)).where(
            has_now == chunk.c.seen
        )
        self.connection.execute(insert(Caregiver).from_select([*columns, "created_at"], rows))
        # Counted rather than read from rowcount, which psycopg leaves at -1 for an INSERT ... SELECT.
        inserted = self.connection.execute(
            select(func.count()).where(is_among(self.connection, Caregiver.id, ids))
        ).scalar_one()
        if inserted != len(caregivers):
            raise ConcurrentChange(
                f"{len(caregivers) - inserted} patients' caregivers changed since validation"
            )
        return {c.patient_id: caregiver_id for c, caregiver_id in zip(caregivers, ids, strict=True)}

    def _change_column(self, model: type[Base], column: str, changes: list[FieldChange]) -> None:
        """Set ``column`` to each change's new value where it still holds the old one (one statement)."""
        stored = model.__table__.c[column]
        chunk = values_table(
            self.connection,
            {"row_id": Integer(), "old": stored.type, "new": stored.type},
            [(change.row_id, change.old, change.new) for change in changes],
        )
        statement = (
            update(model)
            .where(model.__table__.c.id == chunk.c.row_id, stored.is_not_distinct_from(chunk.c.old))
            .values({column: chunk.c.new})
        )
        expect_changed(self.connection, statement, len(changes))

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


def _trail(updates: list[PatientUpdate], added: dict[int, int]) -> Iterable[Change]:
    """Every change of ``updates`` as the audit trail keeps it: each changed value, and each value of
    an added caregiver (from nothing; ``added``: its id by its patient's)."""
    for update_ in updates:
        for change in update_.changes:
            yield Change(
                update_.line, change.table, update_.mrn, change.row_id, change.column, change.old, change.new
            )
        if update_.new_caregiver is not None:
            caregiver = update_.new_caregiver
            yield from _added(update_.line, update_.mrn, added[caregiver.patient_id], caregiver)


def _added(line: int, mrn: str, caregiver_id: int, caregiver: NewCaregiver) -> Iterable[Change]:
    for column in ("name", "email", "phone"):
        value = getattr(caregiver, column)
        if value is not None:
            yield Change(line, "caregivers", mrn, caregiver_id, column, None, value)

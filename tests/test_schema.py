"""The database itself protects patients: constraints hold whatever code writes, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError, StatementError

from processor.adapters.database.models import (
    BulkOperation,
    Patient,
    PatientAdmission,
    User,
    Ward,
    WardBed,
)
from tests.conftest import Database

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def add_user(connection: Connection, username: str, email: str | None = None) -> int:
    row = {
        "username": username,
        "email": email,
        "first_name": "",
        "last_name": "",
        "created_at": NOW,
    }
    return int(connection.execute(insert(User).returning(User.id), row).scalar_one())


def add_patient(connection: Connection, mrn: str, email: str) -> int:
    user_id = add_user(connection, f"user-{mrn}", email)
    row = {"user_id": user_id, "mrn": mrn, "created_at": NOW}
    return int(connection.execute(insert(Patient).returning(Patient.id), row).scalar_one())


def add_bed(connection: Connection, code: str, **values: Any) -> int:
    ward_id = connection.execute(
        insert(Ward).returning(Ward.id),
        {"code": f"W-{code}", "name": "Ward", "created_at": NOW},
    ).scalar_one()
    row = {"code": code, "ward_id": ward_id, "bed_number": "1", "updated_at": NOW} | values
    return int(connection.execute(insert(WardBed).returning(WardBed.id), row).scalar_one())


def admit(connection: Connection, patient_id: int, bed_id: int, active: bool = True) -> None:
    row = {
        "patient_id": patient_id,
        "bed_id": bed_id,
        "admitted_at": NOW,
        "reason": "r",
        "is_active": active,
        "created_at": NOW,
    }
    connection.execute(insert(PatientAdmission), row)


def test_emails_are_unique(database: Database) -> None:
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        add_patient(connection, "001", "jane@example.org")
        add_patient(connection, "002", "jane@example.org")


def test_emails_must_be_stored_lower_case(database: Database) -> None:
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        add_user(connection, "u", "Jane@Example.org")


def test_patient_identifiers_are_unique_and_keep_leading_zeros(database: Database) -> None:
    with database.engine.begin() as connection:
        add_patient(connection, "001", "a@example.org")
        add_patient(connection, "1", "b@example.org")
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        add_patient(connection, "001", "c@example.org")


def test_a_patient_has_at_most_one_active_admission(database: Database) -> None:
    with database.engine.begin() as connection:
        patient = add_patient(connection, "001", "a@example.org")
        first_bed, second_bed = add_bed(connection, "B1"), add_bed(connection, "B2")
        admit(connection, patient, first_bed, active=False)
        admit(connection, patient, first_bed)
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        admit(connection, patient, second_bed)


def test_a_bed_has_at_most_one_active_admission(database: Database) -> None:
    with database.engine.begin() as connection:
        bed = add_bed(connection, "B1")
        admit(connection, add_patient(connection, "001", "a@example.org"), bed)
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        admit(connection, add_patient(connection, "002", "b@example.org"), bed)


@pytest.mark.parametrize("status", ["broken", "OCCUPIED", ""])
def test_bed_status_is_limited_to_the_three_states(database: Database, status: str) -> None:
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        add_bed(connection, "B1", status=status)


def test_an_occupied_bed_has_a_patient_and_only_an_occupied_one(database: Database) -> None:
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        add_bed(connection, "B1", status="occupied")
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        patient = add_patient(connection, "001", "a@example.org")
        add_bed(connection, "B2", status="available", current_patient_id=patient)


def test_a_patient_is_in_at_most_one_bed(database: Database) -> None:
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        patient = add_patient(connection, "001", "a@example.org")
        add_bed(connection, "B1", status="occupied", current_patient_id=patient)
        add_bed(connection, "B2", status="occupied", current_patient_id=patient)


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(insert(Patient), {"user_id": 999, "mrn": "001", "created_at": NOW})


def test_operation_type_and_status_are_checked(database: Database) -> None:
    row = {"operation_type": "import_patients", "status": "pending", "created_at": NOW}
    with database.engine.begin() as connection:
        connection.execute(insert(BulkOperation), row)
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(insert(BulkOperation), row | {"operation_type": "delete_everyone"})
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(update(BulkOperation).values(status="stuck"))


def test_times_are_stored_and_returned_in_utc_and_naive_times_are_refused(
    database: Database,
) -> None:
    from datetime import timedelta, timezone

    local = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    with database.engine.begin() as connection:
        user_id = add_user(connection, "u")
        connection.execute(update(User).values(created_at=local))
        stored = connection.execute(User.__table__.select()).one().created_at
    assert stored == local and stored.tzinfo == UTC
    assert user_id == 1
    with (
        pytest.raises(StatementError, match="naive datetime"),
        database.engine.begin() as connection,
    ):
        connection.execute(update(User).values(created_at=datetime(2026, 1, 1)))


def test_bulk_operation_duration_and_success_rate() -> None:
    op = BulkOperation(total_records=8, successful_records=6, started_at=NOW)
    assert op.duration is None
    op.completed_at = NOW.replace(second=2, microsecond=500_000)
    assert op.duration == 2.5
    assert op.success_rate == 75.0
    assert BulkOperation(total_records=0, successful_records=0).success_rate == 0.0

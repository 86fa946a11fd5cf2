"""Updates (issue 14): in upsert mode a row whose patient_id is known updates the demographics it carries.

An empty cell leaves a value alone, the clear marker clears it, an e-mail of another patient is still an
error, caregivers are told apart by name (two of the same name is an error, never a guess), every
change is in ``audit_changes``, and result.csv says ``created``, ``updated`` or ``unchanged``.
``wardbulk audit patient`` shows the trail.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from processor.errors import ConcurrentChange
from processor.operations.import_patients.ports import FieldChange, NewCaregiver, PatientUpdate
from processor.operations.import_patients.sql import SqlPatientStore
from tests.conftest import Database, Workspace, make_workspace, run_cli
from tests.test_cli_process import env_for

HEADER = "patient_id,first_name,last_name,email,phone,date_of_birth,gender,caregiver_name,caregiver_email\n"
FIRST = (
    "P-1,Ann,Lee,ann@example.org,555-0101,1980-05-15,F,Tom Lee,tom@example.org\n"
    "P-2,Bob,Ray,bob@example.org,555-0102,1975-01-02,M,,\n"
)


def upserting(tmp_path: Path, database: Database, **operation: Any) -> Workspace:
    """A workspace whose import_patients files are upserts, holding P-1 and P-2."""
    settings = {"import_patients": {"mode": "upsert", **operation}}
    workspace = make_workspace(tmp_path, database, operations=settings)
    workspace.drop("import_patients", "first.csv", HEADER + FIRST)
    workspace.run_once()
    assert workspace.summary("import_patients", "first", 1)["successful_records"] == 2
    return workspace


def changes(workspace: Workspace) -> list[tuple[Any, ...]]:
    with workspace.database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT bulk_operation_id, line, table_name, record_key, column_name, old_value, new_value "
                "FROM audit_changes ORDER BY id"
            )
        )
        return [tuple(row) for row in rows]


def result_changes(workspace: Workspace, stem: str, operation_id: int) -> list[tuple[str, str, str]]:
    rows = workspace.rows("import_patients", stem, operation_id, "result.csv")
    return [(row["line"], row["assigned_patient_id"], row["change"]) for row in rows]


def test_a_known_patient_id_updates_only_the_values_its_row_carries(
    tmp_path: Path, database: Database
) -> None:
    workspace = upserting(tmp_path, database)
    content = HEADER + (
        "P-1,,Lee-Smith,,555-0199,,,,\n"  # new surname and phone; the rest left alone
        "P-2,Bob,Ray,BOB@example.org,555-0102,1975-01-02,m,,\n"  # the same values, written differently
        "P-3,Cy,Fox,cy@example.org,,,,,\n"  # unknown: created
    )
    workspace.drop("import_patients", "second.csv", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "second", 2)
    assert (summary["status"], summary["successful_records"], summary["failed_records"]) == (
        "completed",
        3,
        0,
    )
    assert result_changes(workspace, "second", 2) == [
        ("2", "P-1", "updated"),
        ("3", "P-2", "unchanged"),
        ("4", "P-3", "created"),
    ]
    assert summary["changes"] == {"updated": 1, "unchanged": 1, "created": 1}
    assert (
        workspace.scalar(
            "SELECT u.first_name || ' ' || u.last_name || ' ' || u.email || ' ' || p.phone || ' ' || p.gender "
            "FROM patients p JOIN users u ON u.id = p.user_id WHERE p.mrn = 'P-1'"
        )
        == "Ann Lee-Smith ann@example.org 555-0199 F"
    )
    assert workspace.scalar("SELECT date_of_birth FROM patients WHERE mrn = 'P-1'") in (
        "1980-05-15",
        date(1980, 5, 15),
    )
    assert changes(workspace) == [
        (2, 2, "users", "P-1", "last_name", "Lee", "Lee-Smith"),
        (2, 2, "patients", "P-1", "phone", "555-0101", "555-0199"),
    ]
    assert workspace.scalar("SELECT count(*) FROM patients") == 3


def test_an_update_file_needs_only_the_patient_id_and_what_it_changes(
    tmp_path: Path, database: Database
) -> None:
    workspace = upserting(tmp_path, database)
    workspace.drop("import_patients", "phones.csv", "Patient_ID;Phone\nP-1;555-0177\nP-2;555-0102\n")
    workspace.run_once()
    summary = workspace.summary("import_patients", "phones", 2)
    assert (summary["status"], summary["changes"]) == ("completed", {"updated": 1, "unchanged": 1})
    assert workspace.scalar("SELECT phone FROM patients WHERE mrn = 'P-1'") == "555-0177"
    workspace.drop("import_patients", "nokey.csv", "phone\n555-0100\n")
    workspace.run_once()
    assert workspace.summary("import_patients", "nokey", 3)["error_code"] == "missing-label"


def test_insert_mode_still_refuses_a_known_patient_id(tmp_path: Path, database: Database) -> None:
    workspace = make_workspace(tmp_path, database)
    workspace.drop("import_patients", "first.csv", HEADER + FIRST)
    workspace.run_once()
    workspace.drop("import_patients", "again.csv", HEADER + "P-1,Ann,Lee-Smith,ann2@example.org,,,,,\n")
    workspace.drop("import_patients", "phones.csv", "patient_id,phone\nP-1,555-0177\n")
    workspace.run_once()
    summary = workspace.summary("import_patients", "again", 2)
    assert summary["errors_by_code"] == {"duplicate-patient-id": 1}
    assert workspace.summary("import_patients", "phones", 3)["error_code"] == "missing-label"
    assert result_changes(workspace, "first", 1) == [("2", "P-1", "created"), ("3", "P-2", "created")]
    assert changes(workspace) == []


def test_the_clear_marker_clears_optional_values_and_never_a_required_one(
    tmp_path: Path, database: Database
) -> None:
    workspace = upserting(tmp_path, database, clear_marker="<clear>")
    content = HEADER + (
        "P-1,,,,<clear>, <clear> ,,,\n"  # phone and date of birth cleared
        "P-2,<clear>,,,,,,,\n"  # a name is required: the row fails, nothing of it is applied
        "P-3,Cy,Fox,cy@example.org,<clear>,,,,\n"  # a new patient: cleared is simply empty
    )
    workspace.drop("import_patients", "clear.csv", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "clear", 2)
    assert (summary["successful_records"], summary["errors_by_code"]) == (2, {"constraint-error": 1})
    errors = workspace.rows("import_patients", "clear", 2, "errors.csv")
    assert [(e["line"], e["column"], e["message"]) for e in errors] == [
        ("3", "first_name", "first_name cannot be cleared")
    ]
    assert (
        workspace.scalar(
            "SELECT count(*) FROM patients WHERE mrn = 'P-1' AND phone IS NULL AND date_of_birth IS NULL"
        )
        == 1
    )
    assert [c[4:] for c in changes(workspace)] == [
        ("phone", "555-0101", None),
        ("date_of_birth", "1980-05-15", None),
    ]
    assert workspace.scalar("SELECT phone FROM patients WHERE mrn = 'P-3'") is None


def test_without_a_clear_marker_no_value_is_special(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database)
    workspace.drop("import_patients", "literal.csv", HEADER + "P-1,,,,<clear>,,,,\n")
    workspace.run_once()
    assert workspace.summary("import_patients", "literal", 2)["errors_by_code"] == {"type-error": 1}
    assert workspace.scalar("SELECT phone FROM patients WHERE mrn = 'P-1'") == "555-0101"


def test_an_email_of_another_patient_is_still_an_error(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database)
    content = HEADER + (
        "P-1,,,bob@example.org,,,,,\n"  # Bob's
        "P-2,,,Ann@example.org,555-0111,,,,\n"  # Ann's, though Ann gives hers up above: still an error
        "P-4,Di,Ng,di@example.org,,,,,\n"
    )
    workspace.drop("import_patients", "emails.csv", content)
    workspace.drop("import_patients", "own.csv", HEADER + "P-2,,,BOB@example.org,555-0111,,,,\n")
    workspace.run_once()
    summary = workspace.summary("import_patients", "emails", 2)
    assert (summary["successful_records"], summary["errors_by_code"]) == (1, {"duplicate-email": 2})
    assert result_changes(workspace, "own", 3) == [("2", "P-2", "updated")]  # his own e-mail: fine
    assert (
        workspace.scalar("SELECT email FROM users u JOIN patients p ON p.user_id = u.id WHERE p.mrn = 'P-1'")
        == "ann@example.org"
    )
    assert workspace.scalar("SELECT phone FROM patients WHERE mrn = 'P-2'") == "555-0111"


def test_a_patient_id_twice_in_one_file_is_same_as_line_n(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database)
    workspace.drop("import_patients", "twice.csv", HEADER + "P-1,Anne,,,,,,,\nP-1,Annie,,,,,,,\n")
    workspace.run_once()
    errors = workspace.rows("import_patients", "twice", 2, "errors.csv")
    assert [(e["line"], e["code"], e["message"]) for e in errors] == [
        ("3", "duplicate-patient-id", "patient_id is the same as line 2")
    ]
    assert workspace.scalar("SELECT first_name FROM users WHERE username = 'patient:P-1'") == "Anne"


def test_an_unknown_patient_needs_what_insert_mode_needs(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database)
    workspace.drop("import_patients", "new.csv", HEADER + "P-9,,Fox,,,,,,\n")
    workspace.run_once()
    errors = workspace.rows("import_patients", "new", 2, "errors.csv")
    assert [(e["column"], e["code"]) for e in errors] == [
        ("first_name", "constraint-error"),
        ("email", "constraint-error"),
    ]
    assert workspace.scalar("SELECT count(*) FROM patients WHERE mrn = 'P-9'") == 0


def test_caregivers_are_told_apart_by_name(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database)
    content = HEADER + (
        "P-1,,,,,,, tom lee ,tom.lee@example.org\n"  # Ann's caregiver Tom Lee: his e-mail changes
        "P-2,,,,,,,Sue Ray,sue@example.org\n"  # Bob has no Sue: she is added
    )
    workspace.drop("import_patients", "carers.csv", content)
    workspace.run_once()
    assert workspace.summary("import_patients", "carers", 2)["successful_records"] == 2
    assert workspace.scalar("SELECT email FROM caregivers WHERE name = 'Tom Lee'") == "tom.lee@example.org"
    assert workspace.scalar("SELECT count(*) FROM caregivers") == 2
    assert [c[2:] for c in changes(workspace)] == [
        ("caregivers", "P-1", "email", "tom@example.org", "tom.lee@example.org"),
        ("caregivers", "P-2", "name", None, "Sue Ray"),
        ("caregivers", "P-2", "email", None, "sue@example.org"),
    ]


def test_two_caregivers_of_the_same_name_are_ambiguous(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database)
    with workspace.database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO caregivers (patient_id, name, email, created_at) "
                "SELECT id, 'TOM LEE', NULL, created_at FROM patients WHERE mrn = 'P-1'"
            )
        )
    workspace.drop("import_patients", "which.csv", HEADER + "P-1,,,,,,,Tom Lee,t@example.org\n")
    workspace.run_once()
    summary = workspace.summary("import_patients", "which", 2)
    assert summary["errors_by_code"] == {"ambiguous-caregiver": 1}
    assert workspace.scalar("SELECT count(*) FROM caregivers WHERE email = 't@example.org'") == 0


def test_a_senders_mode_applies_to_its_files_only(tmp_path: Path, database: Database) -> None:
    registry = {
        "name": "registry",
        "files": ["REG_*.csv"],
        "operations": ["import_patients"],
        "mode": "upsert",
    }
    workspace = make_workspace(tmp_path, database, senders=[registry])
    workspace.drop("import_patients", "first.csv", HEADER + FIRST)
    workspace.run_once()
    workspace.drop("import_patients", "REG_1.csv", HEADER + "P-1,,,,555-0123,,,,\n")
    workspace.drop("import_patients", "other.csv", HEADER + "P-2,Bob,Ray,bob2@example.org,555-0124,,,,\n")
    workspace.run_once()
    assert workspace.summary("import_patients", "REG_1", 2)["successful_records"] == 1
    assert workspace.summary("import_patients", "other", 3)["errors_by_code"] == {"duplicate-patient-id": 1}
    assert workspace.scalar("SELECT phone FROM patients WHERE mrn = 'P-1'") == "555-0123"


def test_a_dry_run_of_an_upsert_changes_nothing(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database)
    (workspace.inbox / "import_patients" / "validate" / "try.csv").write_text(
        HEADER + "P-1,,Lee-Smith,,,,,,\n"
    )
    workspace.run_once()
    summary = workspace.summary("import_patients", "try", 2)
    assert (summary["status"], summary["successful_records"], summary["changes"]) == (
        "validated",
        1,
        {"updated": 1},
    )
    assert workspace.scalar("SELECT last_name FROM users WHERE username = 'patient:P-1'") == "Lee"
    assert changes(workspace) == []


def seed_ann(database: Database) -> datetime:
    """Patient P-1 (user 1, patient 1, born 1980-05-15), written directly; the time it was made."""
    now = datetime(2026, 12, 3, tzinfo=UTC)
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, email, first_name, last_name, is_active, created_at) "
                "VALUES (1, 'patient:P-1', 'ann@example.org', 'Ann', 'Lee', true, :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO patients (id, user_id, mrn, date_of_birth, created_at) "
                "VALUES (1, 1, 'P-1', '1980-05-15', :now)"
            ),
            {"now": now},
        )
    return now


def test_an_update_is_made_only_where_validation_saw_the_value(database: Database) -> None:
    """Another writer changed the value between validation and apply: the chunk is not applied
    (ConcurrentChange: the pipeline validates the file again)."""
    now = seed_ann(database)
    stale = PatientUpdate(
        "P-1", 2, (FieldChange("patients", "date_of_birth", 1, date(1980, 5, 16), None),), None
    )
    fresh = PatientUpdate(
        "P-1", 2, (FieldChange("patients", "date_of_birth", 1, date(1980, 5, 15), date(1981, 1, 1)),), None
    )
    with database.engine.connect() as connection, pytest.raises(ConcurrentChange):
        SqlPatientStore(connection).update_patients([stale], 1, now)
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bulk_operations (id, operation_type, status, created_at, total_records, "
                "processed_records, successful_records, failed_records) "
                "VALUES (1, 'import_patients', 'processing', :now, 0, 0, 0, 0)"
            ),
            {"now": now},
        )
        SqlPatientStore(connection).update_patients([fresh], 1, now)
    with database.engine.connect() as connection:
        stored = connection.execute(text("SELECT date_of_birth FROM patients")).scalar()
        trail = connection.execute(text("SELECT old_value, new_value FROM audit_changes")).one()
    assert str(stored) == "1981-01-01"
    assert tuple(trail) == ("1980-05-15", "1981-01-01")


def test_wardbulk_audit_patient_shows_the_trail(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database, clear_marker="<clear>")
    workspace.drop("import_patients", "second.csv", HEADER + "P-1,,Lee-Smith,,<clear>,,,,\n")
    workspace.run_once()
    env = env_for(tmp_path, database.url)
    shown = run_cli("audit", "patient", "P-1", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "patient P-1: created" in shown.stdout and "by operation 1 from first.csv" in shown.stdout
    assert "Lee-Smith" in shown.stdout and "555-0101" in shown.stdout and "(none)" in shown.stdout
    as_json = json.loads(run_cli("audit", "patient", "P-1", "--json", cwd=tmp_path, env=env).stdout)
    assert [(c["operation_id"], c["line"], c["column"], c["old"], c["new"]) for c in as_json["changes"]] == [
        (2, 2, "last_name", "Lee", "Lee-Smith"),
        (2, 2, "phone", "555-0101", None),
    ]
    unchanged = run_cli("audit", "patient", "P-2", cwd=tmp_path, env=env)
    assert (unchanged.returncode, "no change recorded since" in unchanged.stdout) == (0, True)
    unknown = run_cli("audit", "patient", "p-1", cwd=tmp_path, env=env)  # exact: no case folding
    assert unknown.returncode != 0 and "no patient has the patient_id 'p-1'" in unknown.stderr


def test_a_caregiver_is_added_only_if_the_patient_has_the_caregivers_validation_saw(
    database: Database,
) -> None:
    """Another writer added a caregiver (perhaps of the same name) since validation: ConcurrentChange,
    and the file is validated again, rather than a patient with two caregivers of one name."""
    now = seed_ann(database)
    with database.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO caregivers (patient_id, name, created_at) VALUES (1, 'Sue Ray', :now)"),
            {"now": now},
        )
    late = PatientUpdate("P-1", 2, (), NewCaregiver(1, "Sue Ray", "sue@example.org", None, 0))
    with database.engine.connect() as connection, pytest.raises(ConcurrentChange):
        SqlPatientStore(connection).update_patients([late], 1, now)


def test_a_file_refused_as_a_whole_reports_no_changes(tmp_path: Path, database: Database) -> None:
    workspace = upserting(tmp_path, database, on_row_error="reject_file")
    workspace.drop("import_patients", "mixed.csv", "patient_id,phone\nP-1,555-0177\nP-2,not a phone\n")
    workspace.run_once()
    summary = workspace.summary("import_patients", "mixed", 2)
    assert (summary["status"], summary["error_code"], "changes" in summary) == ("failed", "row-errors", False)
    assert workspace.scalar("SELECT phone FROM patients WHERE mrn = 'P-1'") == "555-0101"


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"operations": {"import_patients": {"clear_marker": "<clear>"}}}, "only upsert mode clears values"),
        ({"operations": {"bulk_discharge": {"mode": "upsert"}}}, "bulk_discharge has no upsert mode"),
        (
            {"senders": [{"name": "a", "files": ["A*"], "operations": ["bulk_discharge"], "mode": "upsert"}]},
            "has an upsert mode",
        ),
        ({"senders": [{"name": "a", "files": ["A*"], "clear_marker": "<clear>"}]}, "clear_marker"),
    ],
)
def test_config_check_refuses_an_upsert_setting_that_could_not_work(
    tmp_path: Path, settings: dict[str, Any], fragment: str
) -> None:
    from processor.settings import Settings

    with pytest.raises(ValueError, match=fragment):
        Settings(**settings)

"""bulk_assignment, bulk_discharge, sync_beds and caregiver notifications, on the demo wards and beds."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import Database, Workspace, make_workspace

PATIENTS = (
    "first_name,last_name,email,patient_id,caregiver_name,caregiver_email,caregiver_phone\n"
    "Ann,Lee,ann@example.org,001,Carl Lee,carl@example.org,555-0001\n"
    "Bob,Ray,bob@example.org,002,,,\n"
    "Cy,Oz,cy@example.org,003,,,\n"
)


def with_patients(ws: Workspace) -> Workspace:
    ws.drop("import_patients", "patients.csv", PATIENTS)
    ws.run_once()
    return ws


@pytest.fixture
def ward(workspace: Workspace) -> Workspace:
    return with_patients(workspace)


def process(
    ws: Workspace, operation: str, name: str, content: str
) -> tuple[dict[str, object], list[dict[str, str]]]:
    """Drop one file, run, and return its summary and its errors.csv rows."""
    ws.drop(operation, name, content)
    ws.run_once()
    [summary_path] = (ws.outbox / operation).glob(f"{Path(name).stem}.op*.summary.json")
    operation_id = int(summary_path.name.split(".op")[1].split(".")[0])
    return ws.summary(operation, Path(name).stem, operation_id), ws.rows(
        operation, Path(name).stem, operation_id, "errors.csv"
    )


def bed(ws: Workspace, code: str) -> tuple[str, str | None]:
    status = ws.scalar(f"SELECT status FROM ward_beds WHERE code = '{code}'")
    mrn = ws.scalar(
        f"SELECT p.mrn FROM ward_beds b LEFT JOIN patients p ON p.id = b.current_patient_id WHERE b.code = '{code}'"
    )
    return status, mrn


def errors_of(rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(r["line"], r["column"], r["code"]) for r in rows]


# --- bulk_assignment ---


def test_an_assignment_admits_the_patient_and_occupies_the_bed(ward: Workspace) -> None:
    summary, errors = process(
        ward,
        "bulk_assignment",
        "a.csv",
        "patient_id,bed_id,reason,chief_complaint,admission_date\n"
        "001,CARD-01,Emergency,Chest pain,2026-11-20T08:30:00+01:00\n",
    )
    assert (summary["status"], summary["successful_records"], errors) == ("completed", 1, [])
    assert bed(ward, "CARD-01") == ("occupied", "001")
    assert ward.scalar("SELECT count(*) FROM patient_admissions WHERE is_active") == 1
    assert str(ward.scalar("SELECT admitted_at FROM patient_admissions")).startswith("2026-11-20 07:30")
    assert ward.scalar("SELECT bulk_operation_id FROM patient_admissions") == summary["operation_id"]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("999,CARD-01,r,,", ("2", "patient_id", "unknown-patient")),
        ("001,NOPE-01,r,,", ("2", "bed_id", "unknown-bed")),
        ("001,PAED-07,r,,", ("2", "bed_id", "bed-not-available")),
        ("001,CARD-01,,,", ("2", "reason", "constraint-error")),
        ("001,CARD-01,r,2999-01-01,", ("2", "admission_date", "constraint-error")),
        ("001,CARD-01,r,yesterday,", ("2", "admission_date", "type-error")),
        ("001,CARD-01,r,,perhaps", ("2", "notify", "type-error")),
    ],
)
def test_an_assignment_row_that_cannot_be_applied_is_an_error_row(
    ward: Workspace, row: str, expected: tuple[str, str, str]
) -> None:
    _, errors = process(
        ward, "bulk_assignment", "a.csv", "patient_id,bed_id,reason,admission_date,notify\n" + row + "\n"
    )
    assert errors_of(errors) == [expected]
    assert ward.scalar("SELECT count(*) FROM patient_admissions") == 0


def test_a_bed_in_maintenance_or_occupied_says_which(ward: Workspace) -> None:
    process(ward, "bulk_assignment", "first.csv", "patient_id,bed_id,reason\n001,CARD-01,r\n")
    _, errors = process(
        ward, "bulk_assignment", "second.csv", "patient_id,bed_id,reason\n002,CARD-01,r\n003,PAED-07,r\n"
    )
    assert [e["message"] for e in errors] == [
        "the bed is occupied, not available",
        "the bed is maintenance, not available",
    ]


def test_an_admitted_patient_cannot_be_admitted_again(ward: Workspace) -> None:
    process(ward, "bulk_assignment", "first.csv", "patient_id,bed_id,reason\n001,CARD-01,r\n")
    _, errors = process(ward, "bulk_assignment", "second.csv", "patient_id,bed_id,reason\n001,CARD-02,r\n")
    assert errors_of(errors) == [("2", "patient_id", "already-admitted")]
    assert "CARD-01" in errors[0]["message"]


def test_within_a_file_a_second_row_for_a_bed_or_a_patient_fails_against_the_first(ward: Workspace) -> None:
    _, errors = process(
        ward,
        "bulk_assignment",
        "a.csv",
        "patient_id,bed_id,reason\n001,CARD-01,r\n002,CARD-01,r\n001,CARD-02,r\n",
    )
    assert [(e["line"], e["code"], e["message"]) for e in errors] == [
        ("3", "bed-not-available", "bed_id is the same as line 2"),
        ("4", "already-admitted", "patient_id is the same as line 2"),
    ]
    assert bed(ward, "CARD-01") == ("occupied", "001") and bed(ward, "CARD-02") == ("available", None)


# --- bulk_discharge ---


def admitted(ws: Workspace) -> Workspace:
    process(
        ws,
        "bulk_assignment",
        "admit.csv",
        "patient_id,bed_id,reason,admission_date\n001,CARD-01,r,2026-11-01\n002,CARD-02,r,2026-11-02\n",
    )
    return ws


def test_a_discharge_releases_the_bed_and_ends_the_admission(ward: Workspace) -> None:
    admitted(ward)
    summary, errors = process(
        ward,
        "bulk_discharge",
        "d.csv",
        "patient_id,discharge_notes,discharge_status,discharge_date\n"
        "001,Stable,Recovered,2026-11-10T10:00\n002,,,\n",
    )
    assert (summary["successful_records"], errors) == (2, [])
    assert bed(ward, "CARD-01") == ("available", None) and bed(ward, "CARD-02") == ("available", None)
    assert ward.scalar("SELECT count(*) FROM patient_admissions WHERE is_active") == 0
    assert (
        ward.scalar("SELECT discharge_status FROM patient_discharges WHERE discharge_notes = 'Stable'")
        == "recovered"
    )
    assert (
        ward.scalar("SELECT discharge_status FROM patient_discharges WHERE discharge_notes IS NULL")
        == "other"
    )
    length_of_stay = ward.scalar(
        "SELECT count(*) FROM patient_discharges d JOIN patient_admissions a ON a.id = d.admission_id "
        "WHERE d.discharged_at > a.admitted_at"
    )
    assert length_of_stay == 2


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("003,,", ("2", "patient_id", "not-admitted")),
        ("999,,", ("2", "patient_id", "unknown-patient")),
        ("001,healed,", ("2", "discharge_status", "constraint-error")),
        ("001,,2026-10-01", ("2", "discharge_date", "constraint-error")),
        ("001,,2999-10-01", ("2", "discharge_date", "constraint-error")),
    ],
)
def test_a_discharge_row_that_cannot_be_applied_is_an_error_row(
    ward: Workspace, row: str, expected: tuple[str, str, str]
) -> None:
    admitted(ward)
    _, errors = process(
        ward, "bulk_discharge", "d.csv", "patient_id,discharge_status,discharge_date\n" + row + "\n"
    )
    assert errors_of(errors) == [expected]
    assert ward.scalar("SELECT count(*) FROM patient_discharges") == 0


def test_a_patient_twice_in_a_discharge_file_fails_the_second_row(ward: Workspace) -> None:
    admitted(ward)
    _, errors = process(ward, "bulk_discharge", "d.csv", "patient_id\n001\n001\n")
    assert [(e["line"], e["code"], e["message"]) for e in errors] == [
        ("3", "not-admitted", "patient_id is the same as line 2")
    ]
    assert ward.scalar("SELECT count(*) FROM patient_discharges") == 1


# --- sync_beds ---


def test_sync_beds_creates_and_updates_wards_and_beds_and_deletes_nothing(ward: Workspace) -> None:
    beds_before = ward.scalar("SELECT count(*) FROM ward_beds")
    summary, errors = process(
        ward,
        "sync_beds",
        "beds.csv",
        "ward,bed_id,bed_number,ward_name,status\n"
        "ICU,ICU-01,1,Intensive Care,\n"
        "ICU,ICU-02,2,,maintenance\n"
        "CARD,CARD-10,10A,Cardiology East,available\n",
    )
    assert (summary["successful_records"], errors) == (3, [])
    assert ward.scalar("SELECT count(*) FROM ward_beds") == beds_before + 2
    assert ward.scalar("SELECT name FROM wards WHERE code = 'ICU'") == "Intensive Care"
    assert ward.scalar("SELECT name FROM wards WHERE code = 'CARD'") == "Cardiology East"
    assert (
        ward.scalar("SELECT bed_number || '/' || status FROM ward_beds WHERE code = 'CARD-10'")
        == "10A/available"
    )
    assert bed(ward, "ICU-02") == ("maintenance", None)
    assert ward.scalar("SELECT status FROM ward_beds WHERE code = 'PAED-07'") == "maintenance"


def test_a_bed_moves_ward_and_keeps_its_number_when_none_is_given(ward: Workspace) -> None:
    process(ward, "sync_beds", "beds.csv", "ward,bed_id\nSURG,CARD-05\n")
    assert (
        ward.scalar(
            "SELECT w.code || ':' || b.bed_number FROM ward_beds b JOIN wards w ON w.id = b.ward_id WHERE b.code = 'CARD-05'"
        )
        == "SURG:05"
    )


@pytest.mark.parametrize("row", ["CARD,CARD-01,,,maintenance", "SURG,CARD-01,,,", "CARD,CARD-01,,,available"])
def test_an_occupied_bed_cannot_go_to_maintenance_change_status_or_move(ward: Workspace, row: str) -> None:
    process(ward, "bulk_assignment", "a.csv", "patient_id,bed_id,reason\n001,CARD-01,r\n")
    _, errors = process(
        ward, "sync_beds", "beds.csv", "ward,bed_id,bed_number,ward_name,status\n" + row + "\n"
    )
    assert errors_of(errors) == [("2", "bed_id", "bed-occupied")]
    assert bed(ward, "CARD-01") == ("occupied", "001")


def test_an_occupied_bed_may_be_renumbered(ward: Workspace) -> None:
    process(ward, "bulk_assignment", "a.csv", "patient_id,bed_id,reason\n001,CARD-01,r\n")
    _, errors = process(ward, "sync_beds", "beds.csv", "ward,bed_id,bed_number\nCARD,CARD-01,1A\n")
    assert errors == [] and bed(ward, "CARD-01") == ("occupied", "001")


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("CARD,CARD-01,,,occupied", [("2", "status", "constraint-error")]),
        ("CARD,CARD-01,,,\nCARD,CARD-01,,,", [("3", "bed_id", "constraint-error")]),
        ("ICU,ICU-01,,Intensive,\nICU,ICU-02,,Intensive Care,", [("3", "ward_name", "constraint-error")]),
        (",CARD-01,,,", [("2", "ward", "constraint-error")]),
    ],
)
def test_sync_beds_rejects_ambiguous_or_invalid_rows(
    ward: Workspace, rows: str, expected: list[tuple[str, str, str]]
) -> None:
    _, errors = process(
        ward, "sync_beds", "beds.csv", "ward,bed_id,bed_number,ward_name,status\n" + rows + "\n"
    )
    assert errors_of(errors) == expected


# --- notifications ---


def notifications(ws: Workspace) -> list[dict[str, str]]:
    rows = []
    for path in sorted((ws.outbox / "notifications").glob("*.notifications.csv")):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def test_notifications_are_off_by_default(ward: Workspace) -> None:
    admitted(ward)
    assert ward.scalar("SELECT count(*) FROM patient_notifications") == 0
    assert notifications(ward) == []


def test_a_row_can_ask_for_notifications_and_caregivers_get_a_line(ward: Workspace) -> None:
    summary, _ = process(
        ward,
        "bulk_assignment",
        "a.csv",
        "patient_id,bed_id,reason,notify\n001,CARD-01,r,yes\n002,CARD-02,r,1\n003,CARD-03,r,\n",
    )
    lines = notifications(ward)
    assert [
        (
            n["patient_id"],
            n["caregiver_name"],
            n["caregiver_email"],
            n["kind"],
            n["ward"],
            n["bed"],
            n["status"],
        )
        for n in lines
    ] == [
        ("001", "Carl Lee", "carl@example.org", "admission", "CARD", "CARD-01", "queued"),
        ("002", "", "", "admission", "CARD", "CARD-02", "skipped"),
    ]
    assert summary["notifications"] == 2
    assert (
        ward.scalar(
            "SELECT count(*) FROM patient_notifications WHERE status = 'queued' AND caregiver_id IS NOT NULL"
        )
        == 1
    )
    assert (
        ward.scalar(
            "SELECT count(*) FROM patient_notifications WHERE status = 'skipped' AND caregiver_id IS NULL"
        )
        == 1
    )


def test_the_operation_setting_turns_notifications_on_and_a_row_can_opt_out(
    tmp_path: Path, database: Database
) -> None:
    ws = with_patients(make_workspace(tmp_path, database, operations={"bulk_discharge": {"notify": True}}))
    admitted(ws)
    process(ws, "bulk_discharge", "d.csv", "patient_id,notify\n001,\n002,no\n")
    assert [(n["patient_id"], n["kind"], n["bed"]) for n in notifications(ws)] == [
        ("001", "discharge", "CARD-01")
    ]

"""import_patients through the whole pipeline: real files in, database rows and outbox files out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import Database, Workspace, make_workspace

HEADER = "first_name,last_name,email,patient_id,phone,date_of_birth,gender,caregiver_name,caregiver_email,caregiver_phone\n"
SUMMARY_KEYS = {
    "operation_id",
    "operation_type",
    "status",
    "input_file",
    "sha256",
    "total_records",
    "successful_records",
    "failed_records",
    "started_at",
    "completed_at",
    "duration_s",
    "success_rate",
    "error_code",
    "outputs",
}


def patient_count(ws: Workspace) -> int:
    return int(ws.scalar("SELECT count(*) FROM patients"))


def test_a_valid_file_creates_users_patients_and_caregivers(workspace: Workspace) -> None:
    """Each row becomes a User and a Patient; a named caregiver becomes a Caregiver."""
    workspace.drop(
        "import_patients",
        "admissions.csv",
        HEADER
        + "Jane,Doe,Jane.Doe@Example.org,000123,555-0101,1980-05-15,f,John Doe,john@example.org,555-0102\n"
        + "Bob,Smith,bob@example.org,,,,,,,\n",
    )
    workspace.run_once()
    summary = workspace.summary("import_patients", "admissions", 1)
    assert summary.keys() >= SUMMARY_KEYS
    assert (summary["status"], summary["total_records"], summary["successful_records"]) == ("completed", 2, 2)
    assert summary["success_rate"] == 100.0 and summary["error_code"] is None
    assert summary["outputs"] == {
        "result": "admissions.op1.result.csv",
        "errors": "admissions.op1.errors.csv",
        "summary": "admissions.op1.summary.json",
    }
    assert patient_count(workspace) == 2
    assert (
        workspace.scalar(
            "SELECT email FROM users u JOIN patients p ON p.user_id = u.id WHERE p.mrn = '000123'"
        )
        == "jane.doe@example.org"
    )
    assert workspace.scalar("SELECT gender FROM patients WHERE mrn = '000123'") == "F"
    assert workspace.scalar("SELECT count(*) FROM caregivers") == 1
    assert workspace.scalar("SELECT status FROM bulk_operations WHERE id = 1") == "completed"


def test_an_empty_patient_id_gets_a_generated_one_returned_in_the_result(workspace: Workspace) -> None:
    """The result CSV carries the input's columns, line, outcome, message and the assigned patient_id."""
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,patient_id\nAna,Lee,ana@example.org,\nTom,Ray,tom@example.org,007\n",
    )
    workspace.run_once()
    rows = workspace.rows("import_patients", "p", 1, "result.csv")
    assert [(r["line"], r["outcome"], r["assigned_patient_id"]) for r in rows] == [
        ("2", "ok", "WB-000001-0000002"),
        ("3", "ok", "007"),
    ]
    assert list(rows[0]) == [
        "first_name",
        "last_name",
        "email",
        "patient_id",
        "line",
        "outcome",
        "message",
        "assigned_patient_id",
        "change",
    ]
    assert workspace.scalar("SELECT count(*) FROM patients WHERE mrn = 'WB-000001-0000002'") == 1


@pytest.mark.parametrize(
    ("row", "column", "code"),
    [
        (",Doe,a@example.org,,,,,,,", "first_name", "constraint-error"),
        ("Jane,Doe,not-an-email,,,,,,,", "email", "type-error"),
        ("Jane,Doe,a@example.org,,,2999-01-01,,,,", "date_of_birth", "constraint-error"),
        ("Jane,Doe,a@example.org,,,15/05/1980,,,,", "date_of_birth", "type-error"),
        ("Jane,Doe,a@example.org,,,,X,,,", "gender", "constraint-error"),
        ("Jane,Doe,a@example.org,,call me,,,,,", "phone", "type-error"),
        ("Jane,Doe,a@example.org,,,,,,c@example.org,", "caregiver_name", "constraint-error"),
        ("Jane,Doe,a@example.org,,,,", "caregiver_name", "missing-cell"),
        ("Jane,Doe,a@example.org,,,,,,,,surplus", "", "extra-cell"),
        ("Jane\x00,Doe,a@example.org,,,,,,,", "first_name", "control-character"),
    ],
)
def test_a_bad_row_is_skipped_and_reported_and_the_others_applied(
    workspace: Workspace, row: str, column: str, code: str
) -> None:
    """Partial success: the bad row is an error row with a stable code; the good row is applied."""
    workspace.drop("import_patients", "p.csv", HEADER + "Good,Row,good@example.org,,,,,,,\n" + row + "\n")
    workspace.run_once()
    errors = workspace.rows("import_patients", "p", 1, "errors.csv")
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [("3", column, code)]
    assert patient_count(workspace) == 1
    summary = workspace.summary("import_patients", "p", 1)
    assert (summary["status"], summary["successful_records"], summary["failed_records"]) == (
        "completed",
        1,
        1,
    )


def test_duplicates_inside_the_file_point_at_the_first_line(workspace: Workspace) -> None:
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,patient_id\n"
        "A,A,a@example.org,001\nB,B,A@example.org,002\nC,C,c@example.org,001\n",
    )
    workspace.run_once()
    errors = workspace.rows("import_patients", "p", 1, "errors.csv")
    assert [(e["line"], e["code"], e["message"]) for e in errors] == [
        ("3", "duplicate-email", "email is the same as line 2"),
        ("4", "duplicate-patient-id", "patient_id is the same as line 2"),
    ]
    assert patient_count(workspace) == 1


def test_duplicates_against_the_database_are_found_and_skipped(tmp_path: Path, database: Database) -> None:
    ws = make_workspace(tmp_path, database, chunk_size=2)
    ws.drop("import_patients", "first.csv", "first_name,last_name,email,patient_id\nA,A,a@example.org,001\n")
    ws.run_once()
    ws.drop(
        "import_patients",
        "second.csv",
        "first_name,last_name,email,patient_id\n"
        "X,X,x@example.org,009\nB,B,a@example.org,002\nC,C,c@example.org,001\n",
    )
    ws.run_once()
    errors = ws.rows("import_patients", "second", 2, "errors.csv")
    assert [(e["line"], e["code"]) for e in errors] == [
        ("3", "duplicate-email"),
        ("4", "duplicate-patient-id"),
    ]
    assert patient_count(ws) == 2


def test_the_whole_file_is_rejected_when_configured_so(tmp_path: Path, database: Database) -> None:
    """on_row_error = reject_file: one bad row and nothing is applied; ok rows say 'not applied'."""
    ws = make_workspace(tmp_path, database, operations={"import_patients": {"on_row_error": "reject_file"}})
    ws.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\nB,B,bad\n")
    ws.run_once()
    summary = ws.summary("import_patients", "p", 1)
    assert (summary["status"], summary["error_code"], summary["successful_records"]) == (
        "failed",
        "row-errors",
        0,
    )
    assert patient_count(ws) == 0
    outcomes = [(r["outcome"], r["message"][:12]) for r in ws.rows("import_patients", "p", 1, "result.csv")]
    assert outcomes == [("error", "not applied:"), ("error", "email is not")]
    assert ws.rows("import_patients", "p", 1, "errors.csv")[-1]["code"] == "row-errors"
    assert (ws.outbox / "import_patients" / "rejected" / "p.op1.csv").is_file()


def test_too_many_errors_rejects_the_file(tmp_path: Path, database: Database) -> None:
    ws = make_workspace(tmp_path, database, operations={"import_patients": {"max_error_rate": 0.5}})
    ws.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\nB,B,bad\nC,C,worse\n")
    ws.run_once()
    assert ws.summary("import_patients", "p", 1)["error_code"] == "too-many-errors"
    assert patient_count(ws) == 0


def test_the_same_bytes_dropped_twice_are_not_applied_twice(workspace: Workspace) -> None:
    content = "first_name,last_name,email\nA,A,a@example.org\n"
    workspace.drop("import_patients", "monday.csv", content)
    workspace.run_once()
    workspace.drop("import_patients", "monday-again.csv", content)
    workspace.run_once()
    # PostgreSQL sequences have gaps (the refused claim's transaction used an id), so find it by name.
    [summary_path] = (workspace.outbox / "import_patients").glob("monday-again.op*.summary.json")
    summary = json.loads(summary_path.read_text())
    assert (summary["status"], summary["error_code"]) == ("failed", "duplicate-file")
    assert "operation 1" in summary["error_message"]
    assert patient_count(workspace) == 1
    assert not any((workspace.inbox / "import_patients").glob("*.csv"))


def test_identical_bytes_of_a_rejected_file_are_not_refused_as_duplicates(workspace: Workspace) -> None:
    """A failed file applied nothing; sending the same bytes again is judged afresh."""
    content = "first_name,email\nA,a@example.org\n"
    workspace.drop("import_patients", "p.csv", content)
    workspace.run_once()
    workspace.drop("import_patients", "p.csv", content)
    workspace.run_once()
    assert workspace.summary("import_patients", "p", 2)["error_code"] == "missing-label"


@pytest.mark.parametrize(
    ("name", "content", "code", "line"),
    [
        ("p.txt", b"first_name,last_name,email\n", "not-csv", ""),
        ("p.xlsx", b"PK\x03\x04", "unsupported-workbook", ""),  # a zip cut short, not a workbook
        ("p.csv", b"", "empty-file", ""),
        ("p.csv", b"first_name,last_name,email\n", "empty-file", ""),
        ("p.csv", b"first_name,last_name\nA,B\n", "missing-label", "1"),
        ("p.csv", b"first_name,last_name,email,Email\nA,B,c@example.org,d\n", "duplicate-label", "1"),
        (
            "p.csv",
            b"first_name,last_name,email\nA,B,c@example.org\nRen\xe9e,B,d@example.org\n",
            "encoding-error",
            "3",
        ),
        (
            "p.csv",
            b'first_name,last_name,email\nA,"B,c@example.org\nC,D,e@example.org\n',
            "malformed-csv",
            "2",
        ),
    ],
)
def test_a_bad_file_is_moved_aside_with_an_error_report(
    workspace: Workspace, name: str, content: bytes, code: str, line: str
) -> None:
    """Nothing is applied; errors.csv says why; the file sits in outbox/<op>/rejected/."""
    workspace.drop("import_patients", name, content)
    workspace.run_once()
    stem = Path(name).stem
    summary = workspace.summary("import_patients", stem, 1)
    assert (summary["status"], summary["error_code"]) == ("failed", code)
    assert workspace.rows("import_patients", stem, 1, "errors.csv")[0]["line"] == line
    assert (workspace.outbox / "import_patients" / "rejected" / f"{stem}.op1{Path(name).suffix}").is_file()
    assert patient_count(workspace) == 0
    assert workspace.scalar("SELECT error_code FROM bulk_operations WHERE id = 1") == code


def test_an_oversized_file_is_refused_before_reading(tmp_path: Path, database: Database) -> None:
    ws = make_workspace(tmp_path, database, max_file_bytes=10)
    ws.drop("import_patients", "big.csv", "first_name,last_name,email\nA,A,a@example.org\n")
    ws.run_once()
    summary = ws.summary("import_patients", "big", 1)
    assert (summary["error_code"], summary["sha256"]) == ("file-too-large", None)


def test_windows_1252_is_read_only_when_configured(tmp_path: Path, database: Database) -> None:
    ws = make_workspace(tmp_path, database, operations={"import_patients": {"encoding": "cp1252"}})
    ws.drop(
        "import_patients", "p.csv", "first_name,last_name,email\nRenée,Zoë,r@example.org\n".encode("cp1252")
    )
    ws.run_once()
    assert ws.scalar("SELECT first_name FROM users WHERE email = 'r@example.org'") == "Renée"


def test_excel_exports_are_read_bom_semicolons_quoted_newlines_blank_lines(workspace: Workspace) -> None:
    """Reported lines are physical lines of the file, even after a quoted newline and blank lines."""
    content = (
        "\ufeffFirst_Name ; LAST_NAME;email;notes\r\n"
        'Ann;"Multi\r\nLine";ann@example.org;x\r\n'
        "\r\n;;;\r\n"
        "Bo;B;not-mail;y\r\n"
    )
    workspace.drop("import_patients", "excel.csv", content.encode("utf-8"))
    workspace.run_once()
    errors = workspace.rows("import_patients", "excel", 1, "errors.csv")
    assert [(e["line"], e["column"]) for e in errors] == [("6", "email")]
    summary = workspace.summary("import_patients", "excel", 1)
    assert summary["warnings"] == ["unknown column 'notes' ignored"]
    assert workspace.scalar("SELECT last_name FROM users WHERE email = 'ann@example.org'") == "Multi\r\nLine"


def test_outbox_csvs_are_excel_safe_while_the_database_keeps_raw_values(workspace: Workspace) -> None:
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email\n=HYPERLINK(1),+Evil,a@example.org\n@x,-y,bad\n",
    )
    workspace.run_once()
    result = workspace.output("import_patients", "p", 1, "result.csv").read_bytes()
    errors = workspace.output("import_patients", "p", 1, "errors.csv").read_bytes()
    assert result.startswith(b"\xef\xbb\xbf") and errors.startswith(b"\xef\xbb\xbf")
    cells = [cell for row in csv.reader(io.StringIO(result.decode("utf-8-sig"))) for cell in row]
    assert "'=HYPERLINK(1)" in cells and "'+Evil" in cells and "'@x" in cells and "'-y" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert workspace.scalar("SELECT first_name FROM users WHERE email = 'a@example.org'") == "=HYPERLINK(1)"


def test_error_detail_is_capped_but_counts_stay_complete(tmp_path: Path, database: Database) -> None:
    ws = make_workspace(tmp_path, database, error_detail_limit=2)
    ws.drop("import_patients", "p.csv", "first_name,last_name,email\n" + "A,A,bad\n" * 25)
    ws.run_once()
    summary = ws.summary("import_patients", "p", 1)
    assert (summary["errors_total"], summary["errors_truncated"], summary["failed_records"]) == (25, True, 25)
    assert len(ws.rows("import_patients", "p", 1, "errors.csv")) == 2
    kept = ws.scalar("SELECT error_message FROM bulk_operations WHERE id = 1")
    assert kept.count("\n") == 19 and kept.startswith(
        "line 2: email is not a valid e-mail address (type-error)"
    )


def test_the_initiator_is_the_owner_of_the_dropped_file(workspace: Workspace) -> None:
    import getpass

    workspace.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\n")
    workspace.run_once()
    initiator = workspace.scalar(
        "SELECT u.username FROM bulk_operations o JOIN users u ON u.id = o.initiated_by_id"
    )
    assert initiator == getpass.getuser()


def test_processed_files_are_archived_and_the_inbox_holds_only_pending_files(workspace: Workspace) -> None:
    workspace.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\n")
    workspace.drop("import_patients", "~$p.csv", "lock")
    workspace.drop("import_patients", "q.csv.part", "half")
    workspace.run_once()
    assert sorted(p.name for p in (workspace.inbox / "import_patients").iterdir() if p.is_file()) == [
        "q.csv.part",
        "~$p.csv",
    ]
    archived = list((workspace.root / "archive" / "import_patients").glob("*/p.op1.csv"))
    assert len(archived) == 1
    assert not any((workspace.inbox / ".processing" / "import_patients").iterdir())
    assert not list(workspace.outbox.rglob("*.partial"))

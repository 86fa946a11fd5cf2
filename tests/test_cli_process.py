"""The command line as a user runs it: `template`, `process FILE` and `run --once`, on both databases."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import CliResult, run_cli

OPERATIONS = (
    "import_patients",
    "bulk_assignment",
    "transfer_patients",
    "bulk_discharge",
    "sync_beds",
    "export_report",
    "export_patients",
)
DESIGN_COLUMNS = {
    "import_patients": [
        "first_name",
        "last_name",
        "email",
        "patient_id",
        "phone",
        "date_of_birth",
        "gender",
        "caregiver_name",
        "caregiver_email",
        "caregiver_phone",
    ],
    "bulk_assignment": ["patient_id", "bed_id", "reason", "chief_complaint", "admission_date", "notify"],
    "transfer_patients": ["patient_id", "to_bed_id", "reason", "transfer_date", "notify"],
    "bulk_discharge": ["patient_id", "discharge_notes", "discharge_status", "discharge_date", "notify"],
    "sync_beds": ["ward", "bed_id", "bed_number", "ward_name", "status"],
    "export_report": ["report_type", "start_date", "end_date", "ward"],
}
GOOD_IMPORT = "first_name,last_name,email\nAna,Lee,ana@example.org\n"


def env_for(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    return {
        "WARDBULK_DATABASE_URL": database_url,
        "WARDBULK_INBOX_DIR": str(tmp_path / "inbox"),
        "WARDBULK_OUTBOX_DIR": str(tmp_path / "outbox"),
        "WARDBULK_ARCHIVE_DIR": str(tmp_path / "archive"),
        **extra,
    }


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def assert_no_traceback(result: CliResult) -> None:
    assert "Traceback" not in result.stderr, result.stderr


# --- template ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", sorted(DESIGN_COLUMNS))
def test_template_prints_the_design_header_and_one_example_row(operation: str, tmp_path: Path) -> None:
    """`template OP` prints the operation's columns, then one example row with a cell for each column."""
    result = run_cli("template", operation, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert result.stdout.splitlines()[0] == ",".join(DESIGN_COLUMNS[operation])
    header, example = csv_rows(result.stdout)
    assert header == DESIGN_COLUMNS[operation]
    assert len(example) == len(header)
    assert any(example)


def test_template_of_export_patients_is_one_empty_header_line(tmp_path: Path) -> None:
    """export_patients reads no columns: its template is a single empty line and no example row."""
    result = run_cli("template", "export_patients", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert result.stdout == "\n"


def test_every_operation_type_has_a_template() -> None:
    """The operations covered above are exactly the seven operation types."""
    from processor.core.operation_kinds import OperationType

    assert {t.value for t in OperationType} == set(OPERATIONS) == {*DESIGN_COLUMNS, "export_patients"}


def test_template_of_an_unknown_operation_exits_2(tmp_path: Path) -> None:
    """An operation name that does not exist is a usage error."""
    result = run_cli("template", "import_everything", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "import_everything" in result.stderr
    assert_no_traceback(result)


# --- process ----------------------------------------------------------------------------------------


def test_the_import_template_processed_with_process_completes(
    empty_database_url: str, tmp_path: Path
) -> None:
    """`process FILE` applies a copy of FILE: outbox files written, copy archived, FILE left in place."""
    env = env_for(tmp_path, empty_database_url)
    assert run_cli("init", cwd=tmp_path, env=env).returncode == 0
    template = run_cli("template", "import_patients", cwd=tmp_path, env=env)
    assert template.returncode == 0, template.stderr
    source = tmp_path / "admissions.csv"
    source.write_text(template.stdout, encoding="utf-8")
    original = source.read_bytes()

    result = run_cli("process", str(source), "--operation", "import_patients", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert "operation 1 completed: 1 of 1 rows applied" in result.stdout
    outbox = tmp_path / "outbox" / "import_patients"
    for kind in ("result.csv", "errors.csv", "summary.json"):
        assert (outbox / f"admissions.op1.{kind}").is_file(), kind
    summary = json.loads((outbox / "admissions.op1.summary.json").read_text(encoding="utf-8"))
    assert (summary["status"], summary["successful_records"]) == ("completed", 1)
    assert source.read_bytes() == original
    archived = list((tmp_path / "archive" / "import_patients").glob("*/admissions.op1.csv"))
    assert len(archived) == 1
    assert archived[0].read_bytes() == original
    assert list((tmp_path / "inbox" / ".processing" / "import_patients").iterdir()) == []


def test_process_of_a_file_missing_a_required_column_exits_1(empty_database_url: str, tmp_path: Path) -> None:
    """A file without a required column fails as a whole: exit 1, and the output names missing-label."""
    source = tmp_path / "no-email.csv"
    source.write_text("first_name,last_name\nAna,Lee\n", encoding="utf-8")
    env = env_for(tmp_path, empty_database_url)
    assert run_cli("init", cwd=tmp_path, env=env).returncode == 0
    result = run_cli("process", str(source), "-O", "import_patients", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result)
    assert "failed" in result.stdout
    assert "missing-label" in result.stdout
    assert source.is_file()


def test_process_of_a_nonexistent_file_exits_2(empty_database_url: str, tmp_path: Path) -> None:
    """A FILE that does not exist is a usage error, reported before anything is touched."""
    env = env_for(tmp_path, empty_database_url)
    result = run_cli("process", str(tmp_path / "nope.csv"), "-O", "import_patients", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "nope.csv" in result.stderr
    assert_no_traceback(result)
    assert not (tmp_path / "outbox").exists()


# --- run --once -------------------------------------------------------------------------------------


def test_run_once_processes_the_file_in_the_inbox_and_exits(empty_database_url: str, tmp_path: Path) -> None:
    """`run --once` takes every file present, writes its summary, leaves the inbox empty and exits 0."""
    env = env_for(tmp_path, empty_database_url, WARDBULK_STABILITY_WINDOW_S="0")
    init = run_cli("init", "--demo", cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    assert_no_traceback(init)
    inbox = tmp_path / "inbox" / "import_patients"
    (inbox / "admissions.csv").write_text(GOOD_IMPORT, encoding="utf-8")

    result = run_cli("run", "--once", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    summary_path = tmp_path / "outbox" / "import_patients" / "admissions.op1.summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert (summary["status"], summary["total_records"], summary["successful_records"]) == ("completed", 1, 1)
    assert list(inbox.glob("*.csv")) == []

"""Failure modes found in review: each one lost, doubled or misreported a file before it was fixed."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from processor.adapters import entries, inbox
from processor.adapters.database import operation_records as records
from processor.adapters.database.operation_records import OwnershipLost
from processor.adapters.owners import owner_of_pid, this_process
from processor.core.operation_kinds import OperationType
from processor.pipeline import process_claimed
from processor.recovery import recover
from tests.conftest import Database, Workspace, make_workspace

IMPORT = OperationType.IMPORT_PATIENTS


def claim_in(ws: Workspace, operation: OperationType, name: str) -> inbox.ClaimedFile:
    claimed = inbox.claim(
        ws.inbox, inbox.InboxFile(ws.inbox / operation.value / name, operation), this_process()
    )
    assert claimed is not None
    return claimed


def dead_owner() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return owner_of_pid(child.pid)


def leave_registered_but_unjudged(ws: Workspace, source: Path, name: str) -> int:
    """The state of a process killed after registering a file and before recording its rejection."""
    sha = entries.sha256_of(source)
    new = records.NewOperation(IMPORT, name, sha, "someone", dead_owner())
    operation_id = records.register(ws.database.engine, new, ws.app.clock())
    processing = inbox.processing_folder(ws.inbox, IMPORT)
    processing.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, processing / f"op{operation_id}__{name}")
    return operation_id


def test_a_duplicate_interrupted_before_its_rejection_is_still_a_duplicate_after_restart(
    workspace: Workspace,
) -> None:
    content = "first_name,last_name,email\nA,A,a@example.org\n"
    first = workspace.drop("import_patients", "monday.csv", content)
    copy = workspace.root / "monday-copy.csv"
    copy.write_text(content)
    workspace.run_once()
    assert not first.exists()
    operation_id = leave_registered_but_unjudged(workspace, copy, "again.csv")
    [outcome] = recover(workspace.pipeline())
    assert (outcome.operation_id, outcome.error_code) == (operation_id, "duplicate-file")
    assert workspace.scalar("SELECT count(*) FROM users WHERE email = 'a@example.org'") == 1


def test_a_non_csv_interrupted_before_its_rejection_is_still_rejected_after_restart(
    workspace: Workspace,
) -> None:
    source = workspace.root / "notes.txt"
    source.write_text("first_name,last_name,email\nA,A,a@example.org\n")
    leave_registered_but_unjudged(workspace, source, "notes.txt")
    [outcome] = recover(workspace.pipeline())
    assert outcome.error_code == "not-csv"
    assert workspace.scalar("SELECT count(*) FROM patients") == 0


def test_an_input_column_named_outcome_does_not_fool_the_not_applied_rewrite(
    tmp_path: Path, database: Database
) -> None:
    """A result.csv sent back as input has its own 'outcome' column; ours is found by position."""
    ws = make_workspace(tmp_path, database, operations={"import_patients": {"on_row_error": "reject_file"}})
    ws.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,line,outcome\nA,A,a@example.org,2,ok\nB,B,bad,3,ok\n",
    )
    ws.run_once()
    with ws.output("import_patients", "p", 1, "result.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    ours = len(header) - 4  # ... line, outcome, message, assigned_patient_id, change
    assert header[ours : ours + 4] == ["outcome", "message", "assigned_patient_id", "change"]
    assert [row[ours] for row in body] == ["error", "error"]
    assert all(len(row) == len(header) for row in body)
    assert ws.scalar("SELECT count(*) FROM patients") == 0


def test_a_formula_cell_at_the_size_limit_survives_the_rewrite(tmp_path: Path, database: Database) -> None:
    from processor.core.csv_reading import MAX_FIELD_CHARS

    ws = make_workspace(tmp_path, database, operations={"import_patients": {"on_row_error": "reject_file"}})
    huge = "=" + "x" * (MAX_FIELD_CHARS - 1)
    ws.drop("import_patients", "p.csv", f"first_name,last_name,email\nA,{huge},a@example.org\nB,B,bad\n")
    ws.run_once()
    assert ws.summary("import_patients", "p", 1)["error_code"] == "row-errors"


@pytest.mark.parametrize("admission_date", ["0001-01-01T00:00+05:00", "1899-12-31"])
def test_an_absurdly_old_date_is_a_row_error_not_a_crash(workspace: Workspace, admission_date: str) -> None:
    workspace.drop(
        "import_patients", "p.csv", "first_name,last_name,email,patient_id\nA,A,a@example.org,001\n"
    )
    workspace.run_once()
    workspace.drop(
        "bulk_assignment",
        "a.csv",
        f"patient_id,bed_id,reason,admission_date\n001,CARD-01,r,{admission_date}\n",
    )
    workspace.run_once()
    [errors] = list((workspace.outbox / "bulk_assignment").glob("a.op*.errors.csv"))
    assert "admission_date,constraint-error" in errors.read_text(encoding="utf-8-sig")


def test_values_longer_than_their_columns_are_row_errors_on_every_backend(workspace: Workspace) -> None:
    """PostgreSQL enforces column sizes; a too-long cell must not sink the whole file there."""
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,caregiver_name\nA,A,a@example.org,\nB,B,b@example.org,"
        + "c" * 301
        + "\n",
    )
    workspace.run_once()
    summary = workspace.summary("import_patients", "p", 1)
    assert (summary["status"], summary["successful_records"], summary["errors_by_code"]) == (
        "completed",
        1,
        {"constraint-error": 1},
    )


def test_a_bed_taken_between_validation_and_apply_is_revalidated_and_reported(workspace: Workspace) -> None:
    """The conditional update sees the bed gone; the file is validated again and the row fails."""
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,patient_id\nA,A,a@example.org,001\nB,B,b@example.org,002\n",
    )
    workspace.run_once()
    workspace.drop("bulk_assignment", "a.csv", "patient_id,bed_id,reason\n001,CARD-01,r\n")
    sneaked: list[bool] = []

    def occupy_the_bed_once(_done: int) -> None:
        if sneaked:
            return
        sneaked.append(True)
        with workspace.database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO patient_admissions (patient_id, bed_id, admitted_at, reason, is_active, created_at) "
                    "SELECT p.id, b.id, CURRENT_TIMESTAMP, 'other', true, CURRENT_TIMESTAMP "
                    "FROM patients p, ward_beds b WHERE p.mrn = '002' AND b.code = 'CARD-01'"
                )
            )
            connection.execute(
                text(
                    "UPDATE ward_beds SET status = 'occupied', current_patient_id = "
                    "(SELECT id FROM patients WHERE mrn = '002') WHERE code = 'CARD-01'"
                )
            )

    claimed = claim_in(workspace, OperationType.BULK_ASSIGNMENT, "a.csv")
    outcome = process_claimed(workspace.pipeline(on_progress=occupy_the_bed_once), claimed)
    assert (outcome.status.value, outcome.counts.successful, outcome.counts.failed) == ("completed", 0, 1)
    assert workspace.scalar("SELECT count(*) FROM patient_admissions WHERE is_active") == 1
    assert (
        workspace.scalar(
            "SELECT p.mrn FROM ward_beds b JOIN patients p ON p.id = b.current_patient_id WHERE b.code = 'CARD-01'"
        )
        == "002"
    )


def test_a_process_whose_operation_was_taken_over_does_not_commit_it(workspace: Workspace) -> None:
    """If another process decided we were dead and took the file, our transaction must not land."""
    workspace.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\n")

    def be_taken_over(_done: int) -> None:
        with workspace.database.engine.begin() as connection:
            connection.execute(text("UPDATE bulk_operations SET host = 'elsewhere:1'"))

    claimed = claim_in(workspace, OperationType.IMPORT_PATIENTS, "p.csv")
    with pytest.raises(OwnershipLost):
        process_claimed(workspace.pipeline(on_progress=be_taken_over), claimed)
    assert workspace.scalar("SELECT count(*) FROM patients") == 0
    assert workspace.scalar("SELECT status FROM bulk_operations") == "processing"


def test_a_bed_put_into_maintenance_between_validation_and_apply_gets_nobody(workspace: Workspace) -> None:
    """No index catches this one: only the conditional update (status still available) does."""
    workspace.drop(
        "import_patients", "p.csv", "first_name,last_name,email,patient_id\nA,A,a@example.org,001\n"
    )
    workspace.run_once()
    workspace.drop("bulk_assignment", "a.csv", "patient_id,bed_id,reason\n001,CARD-01,r\n")

    def maintenance(_done: int) -> None:
        with workspace.database.engine.begin() as connection:
            connection.execute(text("UPDATE ward_beds SET status = 'maintenance' WHERE code = 'CARD-01'"))

    claimed = claim_in(workspace, OperationType.BULK_ASSIGNMENT, "a.csv")
    outcome = process_claimed(workspace.pipeline(on_progress=maintenance), claimed)
    assert (outcome.counts.successful, outcome.counts.failed) == (0, 1)
    assert workspace.scalar("SELECT count(*) FROM patient_admissions") == 0
    assert workspace.scalar("SELECT status FROM ward_beds WHERE code = 'CARD-01'") == "maintenance"


def test_a_failure_to_archive_after_commit_never_reports_the_file_as_not_applied(
    tmp_path: Path, database: Database
) -> None:
    """The archive share is unusable: the committed file is reported completed; recovery moves it later."""
    ws = make_workspace(tmp_path, database)
    blocker = tmp_path / "archive-share"
    blocker.write_text("not a folder")
    unusable = ws.settings.model_copy(update={"archive_dir": blocker / "archive"})
    ws.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\n")
    with pytest.raises(OSError):
        process_claimed(ws.pipeline(settings=unusable), claim_in(ws, IMPORT, "p.csv"))
    assert ws.scalar("SELECT status FROM bulk_operations") == "completed"
    assert ws.summary("import_patients", "p", 1)["status"] == "completed"
    blocker.unlink()
    recover(ws.pipeline(settings=unusable))
    assert len(list((blocker / "archive").rglob("p.op1.csv"))) == 1
    assert ws.summary("import_patients", "p", 1)["successful_records"] == 1


def test_a_returned_claim_gets_its_done_marker_back(tmp_path: Path, database: Database) -> None:
    """Without the marker a done_marker operation would never take the file again."""
    ws = make_workspace(tmp_path, database, operations={"import_patients": {"done_marker": True}})
    processing = inbox.processing_folder(ws.inbox, IMPORT)
    processing.mkdir(parents=True, exist_ok=True)
    (processing / inbox.claim_name(dead_owner(), "late.csv")).write_text(
        "first_name,last_name,email\nA,A,a@example.org\n"
    )
    recover(ws.pipeline())
    assert (ws.inbox / "import_patients" / "late.csv.done").exists()
    ws.run_once()
    assert ws.scalar("SELECT count(*) FROM patients") == 1


def test_a_discharge_of_a_patient_the_bed_does_not_record_is_a_row_error(workspace: Workspace) -> None:
    """Inconsistent legacy data fails its row with a reason, not the whole file as a database error."""
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,patient_id\nA,A,a@example.org,001\nB,B,b@example.org,002\n",
    )
    workspace.run_once()
    workspace.drop("bulk_assignment", "a.csv", "patient_id,bed_id,reason\n001,CARD-01,r\n002,CARD-02,r\n")
    workspace.run_once()
    with workspace.database.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE ward_beds SET status = 'available', current_patient_id = NULL WHERE code = 'CARD-02'"
            )
        )
        connection.execute(
            text(
                "UPDATE ward_beds SET current_patient_id = (SELECT id FROM patients WHERE mrn = '002') WHERE code = 'CARD-01'"
            )
        )
    workspace.drop("bulk_discharge", "d.csv", "patient_id\n001\n")
    workspace.run_once()
    [summary_path] = (workspace.outbox / "bulk_discharge").glob("d.op*.summary.json")
    summary = json.loads(summary_path.read_text())
    assert (summary["status"], summary["errors_by_code"]) == ("completed", {"constraint-error": 1})


def test_the_heartbeat_shows_a_long_file_s_owner_alive_on_postgresql(workspace: Workspace) -> None:
    if workspace.database.backend != "postgresql":
        pytest.skip("heartbeats are for hosts sharing a PostgreSQL database")
    from processor.pipeline import Heartbeat

    workspace.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\n")
    seen: list[object] = []

    def slow_chunk(_done: int) -> None:
        before = workspace.scalar("SELECT heartbeat_at FROM bulk_operations")
        time.sleep(0.5)
        seen.append((before, workspace.scalar("SELECT heartbeat_at FROM bulk_operations")))

    interval, Heartbeat.interval_s = Heartbeat.interval_s, 0.1
    try:
        process_claimed(workspace.pipeline(on_progress=slow_chunk), claim_in(workspace, IMPORT, "p.csv"))
    finally:
        Heartbeat.interval_s = interval
    [(before, after)] = seen
    assert after > before  # type: ignore[operator]


def test_reports_of_a_request_file_appear_only_when_its_transaction_commits(workspace: Workspace) -> None:
    """A rolled-back request file leaves no report that no summary mentions."""
    workspace.drop("export_report", "r.csv", "report_type\noccupancy\n")

    def be_taken_over(_done: int) -> None:
        with workspace.database.engine.begin() as connection:
            connection.execute(text("UPDATE bulk_operations SET host = 'elsewhere:1'"))

    with pytest.raises(OwnershipLost):
        process_claimed(
            workspace.pipeline(on_progress=be_taken_over),
            claim_in(workspace, OperationType.EXPORT_REPORT, "r.csv"),
        )
    assert not list((workspace.outbox / "reports").glob("[!.]*.csv"))


def test_reports_of_a_request_file_are_published_with_it(workspace: Workspace) -> None:
    workspace.drop("export_report", "r.csv", "report_type\noccupancy\n")
    workspace.run_once()
    visible = sorted(p.name for p in (workspace.outbox / "reports").glob("*.csv"))
    assert len(visible) == 2 and "occupancy-latest.csv" in visible
    assert not list((workspace.outbox / "reports").glob(".*"))

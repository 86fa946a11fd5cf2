"""Dry runs (issue 14): `wardbulk validate FILE --operation OP` reads and checks a file exactly as
`process` would, against the ward database, writes the same outbox files, applies nothing, takes no
claim on the bytes, and is recorded as an operation of its own (status validated). Recovery resumes an
interrupted dry run as a dry run, never as a real run."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from sqlalchemy import text

from processor.adapters import inbox
from processor.adapters.database.engine import build_engine
from processor.adapters.database.migrations import downgrade_to, upgrade_to_head
from processor.adapters.owners import owner_of_pid
from processor.core.operation_kinds import OperationType
from processor.recovery import recover
from tests.conftest import Workspace, run_cli
from tests.test_cli_process import env_for
from tests.test_daemon_e2e import DaemonRun, wait_for
from tests.test_history_scale import index_names
from tests.test_history_tallies import assert_tallies_hold
from tests.test_ops_history import insert_operations, varied_operations
from tests.test_pipeline_safety import dead_pid

FEED = (
    "first_name,last_name,email,patient_id\n"
    "Ann,Good,ann@example.org,0001\n"
    "Bob,Bad,bob@,0002\n"
    "Cid,Good,cid@example.org,0003\n"
)


def scalar(url: str, sql: str) -> object:
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def test_validate_checks_everything_applies_nothing_and_the_file_can_then_be_processed(
    tmp_path: Path, empty_database_url: str
) -> None:
    env = env_for(tmp_path, empty_database_url)
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    feed = tmp_path / "feed.csv"
    feed.write_text(FEED)

    dry = run_cli("validate", str(feed), "--operation", "import_patients", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    assert (
        "operation 1 validated: 2 of 3 rows valid (nothing applied: a dry run), 1 with errors" in dry.stdout
    )
    outbox = tmp_path / "outbox" / "import_patients"
    summary = json.loads((outbox / "feed.op1.summary.json").read_text())
    assert (summary["status"], summary["dry_run"], summary["successful_records"]) == ("validated", True, 2)
    assert summary["outputs"]["rejected"] == "feed.op1.rejected.csv"
    assert "Bob,Bad,bob@,0002" in (outbox / "feed.op1.rejected.csv").read_text()
    result = (outbox / "feed.op1.result.csv").read_text(encoding="utf-8-sig")
    assert "valid: would be applied" in result
    assert scalar(empty_database_url, "SELECT count(*) FROM patients") == 0
    assert scalar(empty_database_url, "SELECT count(*) FROM file_claims") == 0
    assert scalar(empty_database_url, "SELECT status FROM bulk_operations WHERE id = 1") == "validated"
    assert feed.exists()

    real = run_cli("process", str(feed), "--operation", "import_patients", cwd=tmp_path, env=env)
    assert real.returncode == 0, real.stderr  # not refused as a duplicate of the dry run
    assert scalar(empty_database_url, "SELECT count(*) FROM patients") == 2
    stats = json.loads(run_cli("ops", "stats", "--json", cwd=tmp_path, env=env).stdout)
    assert (stats["all"]["operations"], stats["all"]["completed"], stats["all"]["records"]) == (2, 1, 3)

    again = run_cli("validate", str(feed), "--operation", "import_patients", cwd=tmp_path, env=env)
    assert again.returncode == 1  # what a real run would meet: the same bytes, already applied
    assert "error code duplicate-file" in again.stdout


def test_a_dry_run_sees_the_ward_database(tmp_path: Path, empty_database_url: str) -> None:
    """The checks that need the database are made: an unknown bed is an error in a dry run too."""
    env = env_for(tmp_path, empty_database_url)
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    beds = tmp_path / "beds.csv"
    beds.write_text("patient_id,bed_id,reason\n000123,NO-SUCH-BED,Emergency\n")
    dry = run_cli("validate", str(beds), "--operation", "bulk_assignment", cwd=tmp_path, env=env)
    summary = json.loads(
        next((tmp_path / "outbox" / "bulk_assignment").glob("beds.op1.summary.json")).read_text()
    )
    assert summary["failed_records"] == 1, dry.stdout
    assert summary["errors_by_code"]


def test_validate_refuses_a_trigger_whose_content_is_never_read(tmp_path: Path) -> None:
    result = run_cli("validate", __file__, "--operation", "export_patients", cwd=tmp_path)
    assert result.returncode == 2 and "export_patients" in result.stderr


def test_an_interrupted_dry_run_is_resumed_as_a_dry_run(workspace: Workspace) -> None:
    """The crash a dry run may meet: registered, bound, processing. Recovery must never apply it."""
    from processor.pipeline.file_job import register

    workspace.drop("import_patients", "trial.csv", FEED)
    claimed = inbox.claim(
        workspace.inbox,
        inbox.InboxFile(workspace.inbox / "import_patients" / "trial.csv", OperationType.IMPORT_PATIENTS),
        owner_of_pid(dead_pid()),
    )
    assert claimed is not None
    pipeline = workspace.pipeline()
    job = register(pipeline, claimed, None, dry_run=True)
    with workspace.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE bulk_operations SET status = 'processing', host = :dead"),
            {"dead": owner_of_pid(dead_pid())},
        )
    outcomes = recover(workspace.pipeline())
    assert [(o.operation_id, o.status.value) for o in outcomes] == [(job.operation_id, "validated")]
    assert workspace.scalar("SELECT count(*) FROM patients") == 0


def test_0008_keeps_the_history_its_indexes_and_its_tallies(empty_database_url: str) -> None:
    """SQLite rebuilds the table for the new status: the indexes on expressions and the triggers that
    the rebuild drops are made again, and the tallies stay right, down and up again."""
    engine = build_engine(empty_database_url)
    try:
        upgrade_to_head(engine)
        downgrade_to(engine, "0007")
        insert_operations(engine, varied_operations(60))
        upgrade_to_head(engine)
        assert {"ix_bulk_operations_type_duration", "ix_bulk_operations_duration"} <= index_names(engine)
        insert_operations(engine, varied_operations(20, seed=5))  # the triggers are back
        assert_tallies_hold(engine)
        downgrade_to(engine, "0007")
        insert_operations(engine, varied_operations(10, seed=6))
        assert_tallies_hold(engine)
        assert {"ix_bulk_operations_type_duration", "ix_bulk_operations_duration"} <= index_names(engine)
    finally:
        engine.dispose()


def test_a_file_dropped_into_a_validate_folder_is_a_dry_run(tmp_path: Path, empty_database_url: str) -> None:
    """`inbox/<op>/validate/`: an integration team's trial drop, checked by the running daemon, never
    applied, archived like any processed file; the same file dropped into the inbox is then applied."""
    run = DaemonRun(tmp_path, empty_database_url)
    try:
        process = run.start()
        trial = run.inbox() / "validate" / "trial.csv"
        trial.write_text(FEED)
        wait_for(lambda: "trial" in run.summaries(), what="the dry run's summary")
        summary = run.summaries()["trial"]
        assert (summary["status"], summary["dry_run"], summary["failed_records"]) == ("validated", True, 1)
        assert run.scalar("SELECT count(*) FROM patients") == 0
        assert not trial.exists() and len(list((tmp_path / "archive").rglob("trial.op1.csv"))) == 1

        (run.inbox() / "trial.csv").write_text(FEED)
        wait_for(lambda: run.scalar("SELECT count(*) FROM patients") == 2, what="the real run")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        run.stop_all()


def test_a_dry_run_claim_left_by_a_dead_process_goes_back_to_the_validate_folder(
    workspace: Workspace,
) -> None:
    """A claim never registered goes back to where it came from: a dry run's to validate/, so that it
    is never processed for real."""
    processing = inbox.processing_folder(workspace.inbox, OperationType.IMPORT_PATIENTS)
    processing.mkdir(parents=True, exist_ok=True)
    name = inbox.claim_name(owner_of_pid(dead_pid()), "trial.csv", dry_run=True)
    (processing / name).write_text(FEED)
    recover(workspace.pipeline())
    assert (workspace.inbox / "import_patients" / "validate" / "trial.csv").read_text() == FEED
    assert not (workspace.inbox / "import_patients" / "trial.csv").exists()

"""All or nothing, restart-safe: progress, graceful stops, database failures, crash recovery."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from processor.adapters import inbox
from processor.adapters.database.engine import build_engine
from processor.adapters.owners import owner_of_pid, this_process, token
from processor.core.operation_kinds import OperationType
from processor.pipeline import Interrupted, process_claimed
from processor.recovery import recover
from tests.conftest import Database, Workspace, make_workspace

IMPORT = OperationType.IMPORT_PATIENTS


def rows(count: int, start: int = 0) -> str:
    body = "".join(f"P{i},Q{i},p{i}@example.org,{i:06d}\n" for i in range(start, start + count))
    return "first_name,last_name,email,patient_id\n" + body


def claim(ws: Workspace, name: str) -> inbox.ClaimedFile:
    claimed = inbox.claim(
        ws.inbox, inbox.InboxFile(ws.inbox / "import_patients" / name, IMPORT), this_process()
    )
    assert claimed is not None
    return claimed


def test_progress_is_visible_to_other_connections_while_a_file_is_validated(
    tmp_path: Path, database: Database
) -> None:
    ws = make_workspace(tmp_path, database, chunk_size=2)
    ws.drop("import_patients", "p.csv", rows(5))
    seen: list[tuple[int, int]] = []

    def observe(done: int) -> None:
        seen.append((done, ws.scalar("SELECT processed_records FROM bulk_operations WHERE id = 1")))

    process_claimed(ws.pipeline(on_progress=observe, progress_after_s=0.0), claim(ws, "p.csv"))
    assert seen == [(2, 2), (4, 4), (5, 5)]


def test_a_file_done_within_the_quiet_start_writes_no_progress_of_its_own(
    tmp_path: Path, database: Database
) -> None:
    """Progress is first written ``progress_after_s`` after a file started: a file done sooner costs
    no transaction per chunk, and its completion records its counts."""
    ws = make_workspace(tmp_path, database, chunk_size=2)
    ws.drop("import_patients", "p.csv", rows(5))
    seen: list[tuple[int, int]] = []

    def observe(done: int) -> None:
        seen.append((done, ws.scalar("SELECT processed_records FROM bulk_operations WHERE id = 1")))

    outcome = process_claimed(ws.pipeline(on_progress=observe, progress_after_s=60.0), claim(ws, "p.csv"))
    assert outcome.status.value == "completed"
    assert seen == [(2, 0), (4, 0), (5, 0)]
    assert ws.scalar("SELECT processed_records FROM bulk_operations WHERE id = 1") == 5


def test_progress_is_written_once_the_quiet_start_is_over(tmp_path: Path, database: Database) -> None:
    """A file still being read after ``progress_after_s`` shows its progress at every chunk from then."""
    ws = make_workspace(tmp_path, database, chunk_size=2)
    ws.drop("import_patients", "p.csv", rows(5))
    seen: list[tuple[int, int]] = []
    now = [datetime.now(UTC)]  # the pipeline's clock, moved on by the test alone

    def observe(done: int) -> None:
        seen.append((done, ws.scalar("SELECT processed_records FROM bulk_operations WHERE id = 1")))
        if done == 2:
            now[0] += timedelta(seconds=0.3)  # the first chunk was slow: the quiet start is over

    pipeline = ws.pipeline(on_progress=observe, progress_after_s=0.2, clock=lambda: now[0])
    process_claimed(pipeline, claim(ws, "p.csv"))
    assert seen == [(2, 0), (4, 4), (5, 5)]


def test_a_graceful_stop_rolls_the_file_back_and_the_next_start_applies_it_once(
    tmp_path: Path, database: Database
) -> None:
    ws = make_workspace(tmp_path, database, chunk_size=2)
    ws.drop("import_patients", "p.csv", rows(6))
    stop = threading.Event()
    pipeline = ws.pipeline(
        should_stop=stop.is_set, on_progress=lambda done: stop.set() if done >= 4 else None
    )
    with pytest.raises(Interrupted):
        process_claimed(pipeline, claim(ws, "p.csv"))
    assert ws.scalar("SELECT count(*) FROM patients") == 0
    assert ws.scalar("SELECT status FROM bulk_operations WHERE id = 1") == "pending"
    assert not list(ws.outbox.rglob("p.op1.*"))

    outcomes = recover(ws.pipeline())
    assert [(o.operation_id, o.status.value) for o in outcomes] == [(1, "completed")]
    assert ws.scalar("SELECT count(*) FROM patients") == 6
    assert ws.summary("import_patients", "p", 1)["successful_records"] == 6


def add_failing_trigger(database: Database, on_mrn: str) -> None:
    """A real database failure in the middle of a file: inserting this patient_id raises."""
    with database.engine.begin() as connection:
        if database.backend == "sqlite":
            connection.exec_driver_sql(
                f"CREATE TRIGGER boom BEFORE INSERT ON patients WHEN NEW.mrn = '{on_mrn}' "
                "BEGIN SELECT RAISE(ABORT, 'storage failure'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.mrn = '{on_mrn}' THEN RAISE EXCEPTION 'storage failure'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER boom BEFORE INSERT ON patients FOR EACH ROW EXECUTE FUNCTION boom()"
            )


def drop_failing_trigger(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.exec_driver_sql(
            "DROP TRIGGER boom" + ("" if database.backend == "sqlite" else " ON patients")
        )
        if database.backend == "postgresql":
            connection.exec_driver_sql("DROP FUNCTION boom()")


def test_a_database_failure_mid_file_leaves_no_row_of_that_file(tmp_path: Path, database: Database) -> None:
    """Rows of earlier chunks are rolled back too; the operation fails with the reason; file moved aside."""
    ws = make_workspace(tmp_path, database, chunk_size=2)
    add_failing_trigger(database, on_mrn="000004")
    try:
        ws.drop("import_patients", "p.csv", rows(6))
        ws.run_once()
    finally:
        drop_failing_trigger(database)
    summary = ws.summary("import_patients", "p", 1)
    assert (summary["status"], summary["error_code"]) == ("failed", "database-error")
    assert "nothing was applied" in summary["error_message"]
    assert ws.scalar("SELECT count(*) FROM patients") == 0
    assert ws.scalar("SELECT count(*) FROM users WHERE email LIKE 'p%'") == 0
    assert ws.scalar("SELECT count(*) FROM file_claims") == 0
    assert (ws.outbox / "import_patients" / "rejected" / "p.op1.csv").is_file()


def test_a_locked_database_is_retried_with_backoff(tmp_path: Path, database: Database) -> None:
    """SQLite 'database is locked' mid-file is transient: the file is applied once the lock is gone."""
    if database.backend != "sqlite":
        pytest.skip("SQLite locking")
    impatient = build_engine(database.url, sqlite_busy_timeout_ms=50)
    ws = make_workspace(tmp_path, Database("sqlite", database.url, impatient), chunk_size=2)
    ws.drop("import_patients", "p.csv", rows(3))
    holder = build_engine(database.url)
    locked = threading.Event()

    def hold_lock() -> None:
        with holder.connect().execution_options(sqlite_begin_immediate=True) as connection:
            transaction = connection.begin()
            locked.set()
            time.sleep(0.6)
            transaction.rollback()

    def lock_once_after_first_chunk(_done: int) -> None:
        if not locked.is_set():
            threading.Thread(target=hold_lock).start()
            locked.wait()

    outcome = process_claimed(
        ws.pipeline(backoff_s=0.4, on_progress=lock_once_after_first_chunk), claim(ws, "p.csv")
    )
    assert outcome.status.value == "completed"
    assert ws.scalar("SELECT count(*) FROM patients") == 3
    impatient.dispose()
    holder.dispose()


def test_a_file_committed_before_a_crash_is_published_and_archived_at_restart(workspace: Workspace) -> None:
    """Rebuilds the exact disk state of a crash between commit and publish, then restarts."""
    workspace.drop("import_patients", "p.csv", rows(2))
    workspace.run_once()
    folder = workspace.outbox / "import_patients"
    committer = token(workspace.scalar("SELECT host FROM bulk_operations WHERE id = 1"))
    for final in folder.glob("p.op1.*"):
        os.replace(final, folder / f".{final.name}.{committer}.partial")
    [archived] = (workspace.root / "archive").rglob("p.op1.csv")
    processing = inbox.processing_folder(workspace.inbox, IMPORT)
    os.replace(archived, processing / "op1__p.csv")

    outcomes = recover(workspace.pipeline())
    assert [(o.operation_id, o.status.value) for o in outcomes] == [(1, "completed")]
    assert workspace.summary("import_patients", "p", 1)["status"] == "completed"
    assert not list(folder.glob(".*.partial"))
    assert not any(processing.iterdir())
    assert workspace.scalar("SELECT count(*) FROM patients") == 2


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_file_claimed_by_a_process_that_died_before_registering_it_goes_back(workspace: Workspace) -> None:
    processing = inbox.processing_folder(workspace.inbox, IMPORT)
    processing.mkdir(parents=True, exist_ok=True)
    (processing / inbox.claim_name(owner_of_pid(dead_pid()), "late.csv")).write_text(rows(1))
    recover(workspace.pipeline())
    assert (workspace.inbox / "import_patients" / "late.csv").is_file()
    workspace.run_once()
    assert workspace.scalar("SELECT count(*) FROM patients") == 1


def test_a_live_process_s_claim_is_left_alone(workspace: Workspace) -> None:
    """Another process on this host (a `wardbulk process`, say) is working on it right now."""
    processing = inbox.processing_folder(workspace.inbox, IMPORT)
    processing.mkdir(parents=True, exist_ok=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        claimed = processing / inbox.claim_name(owner_of_pid(live.pid), "busy.csv")
        claimed.write_text(rows(1))
        recover(workspace.pipeline())
        assert claimed.exists()
        assert not (workspace.inbox / "import_patients" / "busy.csv").exists()
    finally:
        live.kill()
        live.wait()


def test_a_returned_claim_never_overwrites_a_newer_file_of_the_same_name(workspace: Workspace) -> None:
    processing = inbox.processing_folder(workspace.inbox, IMPORT)
    processing.mkdir(parents=True, exist_ok=True)
    (processing / inbox.claim_name(owner_of_pid(dead_pid()), "daily.csv")).write_text(rows(1))
    workspace.drop("import_patients", "daily.csv", rows(1, start=50))
    recover(workspace.pipeline())
    names = sorted(p.name for p in (workspace.inbox / "import_patients").iterdir() if p.is_file())
    assert len(names) == 2 and "daily.csv" in names
    assert (workspace.inbox / "import_patients" / "daily.csv").read_text() == rows(1, start=50)


def interrupt_after_first_chunk(ws: Workspace, name: str) -> None:
    """Claim and start a file, then stop gracefully: it is left pending and bound in the processing area."""
    stop = threading.Event()
    pipeline = ws.pipeline(should_stop=stop.is_set, on_progress=lambda _: stop.set())
    with pytest.raises(Interrupted):
        process_claimed(pipeline, claim(ws, name))


def test_an_operation_left_processing_by_a_crash_is_processed_again(workspace: Workspace) -> None:
    """The state a kill -9 leaves mid-validation: operation processing, file bound in the processing area."""
    workspace.drop("import_patients", "p.csv", rows(3))
    interrupt_after_first_chunk(workspace, "p.csv")
    with workspace.database.engine.begin() as connection:
        connection.execute(text("UPDATE bulk_operations SET status = 'processing'"))
    workspace.run_once()
    assert workspace.scalar("SELECT status FROM bulk_operations WHERE id = 1") == "completed"
    assert (
        workspace.scalar("SELECT count(*) FROM bulk_operations WHERE status IN ('pending', 'processing')")
        == 0
    )
    assert workspace.scalar("SELECT count(*) FROM patients") == 3


def test_a_silent_operation_of_another_live_host_is_left_alone(workspace: Workspace) -> None:
    """Another host's operation with a fresh heartbeat belongs to a daemon still working on it."""
    workspace.drop("import_patients", "p.csv", rows(1))
    interrupt_after_first_chunk(workspace, "p.csv")
    with workspace.database.engine.begin() as connection:
        connection.execute(text("UPDATE bulk_operations SET host = 'other-host', status = 'processing'"))
    assert recover(workspace.pipeline()) == []
    assert workspace.scalar("SELECT status FROM bulk_operations WHERE id = 1") == "processing"

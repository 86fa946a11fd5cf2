"""One entry's trouble is that entry's alone: it ends as its own failed summary and every other goes on.

Unknown bugs cannot be dropped into an inbox on purpose, so these tests make the pipeline's own steps
raise (monkeypatch) where a real defect or a hostile entry would: the contract is about *any* exception.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from processor.adapters import inbox
from processor.core.operation_kinds import OperationType
from processor.pipeline import checks, process_claimed, rejection, validation
from processor.recovery import recover
from tests.conftest import REPO_ROOT, Database, Workspace, make_workspace
from tests.test_daemon_e2e import DaemonRun
from tests.test_pipeline_safety import claim, interrupt_after_first_chunk, rows

IMPORT = OperationType.IMPORT_PATIENTS


def processing_is_empty(ws: Workspace) -> bool:
    return not any(inbox.processing_folder(ws.inbox, IMPORT).iterdir())


def raise_for(marker: str, error: BaseException) -> Any:
    """A replacement for ``_validate_chunk`` that raises ``error`` in files whose rows hold ``marker``."""
    real = validation._validate_chunk

    def validate_chunk(pipeline: Any, job: Any, run: Any, chunk: Any, *rest: Any) -> None:
        if any(marker in cell for record in chunk for cell in record.raw):
            raise error
        real(pipeline, job, run, chunk, *rest)

    return validate_chunk


def test_an_unexpected_error_in_one_file_ends_as_its_failed_summary_and_the_next_file_is_applied(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """internal-error, nothing applied, the file beside its report; the file after it is applied."""
    monkeypatch.setattr(validation, "_validate_chunk", raise_for("BOOM", KeyError("bug")))
    workspace.drop("import_patients", "a.csv", rows(2).replace("P0", "BOOM"), mtime=1_000_000)
    workspace.drop("import_patients", "b.csv", rows(2, start=10), mtime=1_000_100)
    workspace.run_once()
    failed, applied = (
        workspace.summary("import_patients", "a", 1),
        workspace.summary("import_patients", "b", 2),
    )
    assert (failed["status"], failed["error_code"]) == ("failed", "internal-error")
    assert (applied["status"], applied["successful_records"]) == ("completed", 2)
    assert workspace.scalar("SELECT count(*) FROM patients") == 2
    assert (workspace.outbox / "import_patients" / "rejected" / "a.op1.csv").is_file()
    assert processing_is_empty(workspace)


def test_an_error_before_the_rows_are_read_ends_as_a_summary_too(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even the checks that need no rows (name, size, type) are guarded."""

    def broken_precheck(*_: Any) -> None:
        raise ValueError("bug in a check")

    monkeypatch.setattr(checks, "precheck", broken_precheck)
    workspace.drop("import_patients", "p.csv", rows(1))
    outcome = process_claimed(workspace.pipeline(), claim(workspace, "p.csv"))
    assert (outcome.status.value, outcome.error_code) == ("failed", "internal-error")
    assert workspace.summary("import_patients", "p", 1)["error_code"] == "internal-error"
    assert processing_is_empty(workspace)


def test_when_even_the_rejection_fails_the_summary_is_written_from_the_database_record(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last resort: the operation is recorded failed, and publishing writes its summary."""
    monkeypatch.setattr(validation, "_validate_chunk", raise_for("P0", KeyError("bug")))

    def broken_reject(*_: Any) -> None:
        raise UnicodeError("bug while writing the report")

    monkeypatch.setattr(rejection, "reject_file", broken_reject)
    workspace.drop("import_patients", "p.csv", rows(1))
    outcome = process_claimed(workspace.pipeline(), claim(workspace, "p.csv"))
    summary = workspace.summary("import_patients", "p", 1)
    assert (outcome.status.value, summary["status"], summary["error_code"]) == (
        "failed",
        "failed",
        "internal-error",
    )
    assert workspace.scalar("SELECT count(*) FROM patients") == 0
    assert processing_is_empty(workspace)


def test_a_fault_of_the_host_is_not_blamed_on_the_file_it_waits_claimed_and_is_applied_later(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk is the host's trouble: no failed summary; once it is gone the file is applied."""
    no_space = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(validation, "_validate_chunk", raise_for("P0", no_space))
    workspace.drop("import_patients", "p.csv", rows(2))
    with pytest.raises(OSError, match="No space"):
        process_claimed(workspace.pipeline(), claim(workspace, "p.csv"))
    assert not (workspace.outbox / "import_patients" / "p.op1.summary.json").exists()
    assert workspace.scalar("SELECT status FROM bulk_operations WHERE id = 1") != "failed"

    monkeypatch.undo()
    recover(workspace.pipeline())
    assert workspace.summary("import_patients", "p", 1)["status"] == "completed"
    assert workspace.scalar("SELECT count(*) FROM patients") == 2


def test_recovery_goes_on_past_an_operation_it_cannot_finish(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One unfinished operation whose publishing fails does not hold back the others; it is finished
    at a later recovery."""
    for name, start in (("a.csv", 0), ("b.csv", 10)):
        workspace.drop("import_patients", name, rows(3, start=start))
        interrupt_after_first_chunk(workspace, name)
    real_archive = inbox.archive

    def archive_fails_for_a(claimed: inbox.ClaimedFile, *rest: Any) -> Path:
        if claimed.original_name == "a.csv":
            raise RuntimeError("bug while archiving")
        return real_archive(claimed, *rest)

    monkeypatch.setattr(inbox, "archive", archive_fails_for_a)
    finished = recover(workspace.pipeline())
    assert [outcome.operation_id for outcome in finished] == [2]
    assert workspace.summary("import_patients", "b", 2)["status"] == "completed"

    monkeypatch.undo()
    recover(workspace.pipeline())
    assert workspace.scalar("SELECT count(*) FROM patients") == 6
    with workspace.database.engine.connect() as connection:
        statuses = connection.execute(text("SELECT status FROM bulk_operations ORDER BY id")).scalars()
        assert list(statuses) == ["completed", "completed"]
    assert processing_is_empty(workspace)


def test_a_signal_arriving_while_the_main_thread_holds_a_lock_still_stops_the_daemon() -> None:
    """The handler takes no lock and logs nothing: a stop requested while the interrupted code holds
    the lock the stop needs (here ``Event``'s own) is delivered, not deadlocked."""
    script = textwrap.dedent(
        """
        import os, signal, threading, time
        from processor.adapters.signals import SignalRelay

        stopped = threading.Event()
        relay = SignalRelay(lambda signum: stopped.set())
        relay.install((signal.SIGTERM,))
        with stopped._cond:  # held, as during Event.clear() in the daemon's loop
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)  # the signal's Python-level handler runs in here
        print("stopped" if stopped.wait(5) else "lost")
        relay.uninstall()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.stdout.strip() == "stopped", result.stderr


def test_the_stop_is_logged_by_the_loop_after_the_signal(tmp_path: Path, empty_database_url: str) -> None:
    """SIGTERM: the loop logs stop_requested with the signal's name, then daemon_stopped; exit 0."""
    run = DaemonRun(tmp_path, empty_database_url)
    try:
        process = run.start()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        run.stop_all()
    log = run.log.read_text()
    assert '"signal": "SIGTERM", "event": "stop_requested"' in log
    assert log.index("stop_requested") < log.index("daemon_stopped")


@pytest.fixture
def other_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A folder on another filesystem than tmp_path (the machine's /dev/shm tmpfs)."""
    folder = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        if folder.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("/dev/shm is on the same filesystem as the test's folder here")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_entries_move_aside_to_an_outbox_and_archive_on_another_filesystem(
    tmp_path: Path, database: Database, other_filesystem: Path
) -> None:
    """A regular file is copied to an archive elsewhere; a symlink is moved as a link; a FIFO and a
    folder, which cannot be copied, stay on the inbox's filesystem in inbox/.refused/, and their place
    in rejected/ links there. Every entry has its summary and the processing area is empty."""
    ws = make_workspace(
        tmp_path, database, outbox_dir=other_filesystem / "outbox", archive_dir=other_filesystem / "archive"
    )
    folder = ws.inbox / "import_patients"
    ws.drop("import_patients", "good.csv", rows(1))
    (folder / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    os.mkfifo(folder / "pipe.csv")
    (folder / "folder.csv").mkdir()
    ws.run_once()

    rejected = other_filesystem / "outbox" / "import_patients" / "rejected"
    [archived] = (other_filesystem / "archive").rglob("*.csv")
    assert archived.name.startswith("good.op") and archived.read_text() == rows(1)
    [link] = rejected.glob("link.op*.csv")
    assert os.readlink(link) == str(tmp_path / "elsewhere.csv")
    refused = ws.inbox / ".refused" / "import_patients"
    for name in ("pipe", "folder"):
        [kept] = [p for p in refused.iterdir() if p.name.endswith(f"__{name}.csv")]
        [moved] = rejected.glob(f"{name}.op*.csv")
        assert moved.is_symlink() and Path(os.readlink(moved)) == kept
    assert stat.S_ISFIFO(os.lstat(next(refused.glob("*__pipe.csv"))).st_mode)
    statuses = ws.scalar("SELECT count(*) FROM bulk_operations WHERE error_code = 'not-a-regular-file'")
    assert statuses == 3
    assert processing_is_empty(ws)

"""The daemon as a user runs it: `wardbulk run` in a subprocess, files dropped into the inbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from processor.adapters.database.engine import build_engine
from tests.conftest import run_cli

SECRET_VALUES = (
    "Zebulon",
    "Quixote",
    "zebulon.quixote@example.org",
    "Ottoline",
    "ottoline@example.org",
    "555-8642",
    "1977-03-04",
)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class DaemonRun:
    """A wardbulk installation in tmp_path and the daemon processes started on it."""

    def __init__(self, root: Path, database_url: str, **settings: str) -> None:
        self.root = root
        self.database_url = database_url
        self.env = {
            "WARDBULK_DATABASE_URL": database_url,
            "WARDBULK_INBOX_DIR": str(root / "inbox"),
            "WARDBULK_OUTBOX_DIR": str(root / "outbox"),
            "WARDBULK_ARCHIVE_DIR": str(root / "archive"),
            "WARDBULK_STABILITY_WINDOW_S": "1.0",
            "WARDBULK_RESCAN_INTERVAL_S": "1",
            "WARDBULK_LOG_FORMAT": "json",
            **settings,
        }
        self.log = root / "daemon.log"
        self.processes: list[subprocess.Popen[bytes]] = []
        result = run_cli("init", "--demo", cwd=root, env=self.env)
        assert result.returncode == 0, result.stderr

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDBULK_")} | self.env
        before = self.log.read_bytes().count(b"daemon_watching") if self.log.exists() else 0
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "processor", "run", *args],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=log,
            )
        self.processes.append(process)
        wait_for(lambda: self.log.read_bytes().count(b"daemon_watching") > before, what="daemon watching")
        return process

    def inbox(self, operation: str = "import_patients") -> Path:
        return self.root / "inbox" / operation

    def summaries(self, operation: str = "import_patients") -> dict[str, dict[str, object]]:
        folder = self.root / "outbox" / operation
        return {
            path.name.split(".op")[0]: json.loads(path.read_text()) for path in folder.glob("*.summary.json")
        }

    def scalar(self, sql: str) -> object:
        engine = build_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return connection.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def daemon(tmp_path: Path, empty_database_url: str) -> Iterator[DaemonRun]:
    run = DaemonRun(tmp_path, empty_database_url)
    yield run
    run.stop_all()


def write_slowly(path: Path, parts: list[str], pause: float) -> None:
    """A sender writing a file in chunks, as a copy over a slow share does."""
    with path.open("w", encoding="utf-8") as handle:
        for part in parts:
            handle.write(part)
            handle.flush()
            time.sleep(pause)


def test_dropped_files_become_outbox_summaries_and_nothing_reaches_the_log(daemon: DaemonRun) -> None:
    """Slowly written, renamed-in and non-CSV files all end as summaries; logs carry no cell value."""
    process = daemon.start()
    header = "first_name,last_name,email,phone,date_of_birth\n"
    rows = [f"Pat{i},Slow{i},slow{i}@example.org,555-{i:04d},1980-01-01\n" for i in range(30)]
    write_slowly(daemon.inbox() / "slow.csv", [header, *rows[:10], *rows[10:]], pause=0.02)
    staged = daemon.inbox() / "renamed.csv.tmp"
    staged.write_text(
        header + "Zebulon,Quixote,Zebulon.Quixote@example.org,555-8642,1977-03-04\n"
        "Ottoline,Bad,ottoline@example,,\n"
    )
    staged.rename(daemon.inbox() / "renamed.csv")
    (daemon.inbox() / "notes.txt").write_text("Zebulon Quixote called\n")

    wait_for(lambda: len(daemon.summaries()) == 3, what="three summaries")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0

    summaries = daemon.summaries()
    assert (summaries["slow"]["status"], summaries["slow"]["successful_records"]) == ("completed", 30)
    assert (summaries["renamed"]["successful_records"], summaries["renamed"]["failed_records"]) == (1, 1)
    assert (summaries["notes"]["status"], summaries["notes"]["error_code"]) == ("failed", "not-csv")
    assert daemon.scalar("SELECT count(*) FROM patients") == 31
    assert not [p for p in daemon.inbox().iterdir() if p.is_file()]

    log_text = daemon.log.read_text()
    for value in SECRET_VALUES:
        assert value.lower() not in log_text.lower(), value
    events = [json.loads(line)["event"] for line in log_text.splitlines() if line.startswith("{")]
    assert events.count("file_processed") == 3 and "daemon_stopped" in events


def test_files_are_applied_in_the_order_they_arrived(daemon: DaemonRun) -> None:
    """The earlier file wins a conflict: the later one's row is the duplicate."""
    process = daemon.start()
    (daemon.inbox() / "b-first.csv").write_text("first_name,last_name,email\nAnn,First,ann@example.org\n")
    time.sleep(0.3)
    (daemon.inbox() / "a-second.csv").write_text("first_name,last_name,email\nAnn,Second,ann@example.org\n")
    wait_for(lambda: len(daemon.summaries()) == 2, what="two summaries")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert daemon.scalar("SELECT last_name FROM users WHERE email = 'ann@example.org'") == "First"
    assert daemon.summaries()["a-second"]["failed_records"] == 1


def test_files_already_in_the_inbox_at_start_and_the_periodic_rescan(daemon: DaemonRun) -> None:
    """A file present before start is taken; a file whose event is lost is found by the rescan."""
    (daemon.inbox() / "early.csv").write_text("first_name,last_name,email\nE,E,e@example.org\n")
    daemon.env["WARDBULK_OBSERVER"] = "polling"
    daemon.env["WARDBULK_POLL_INTERVAL_S"] = "60"  # the observer sees nothing in time: only rescans do
    process = daemon.start()
    wait_for(lambda: "early" in daemon.summaries(), what="early file")
    (daemon.inbox() / "late.csv").write_text("first_name,last_name,email\nL,L,l@example.org\n")
    wait_for(lambda: "late" in daemon.summaries(), timeout=15, what="rescan")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def big_import(rows: int) -> str:
    lines = ["first_name,last_name,email,patient_id,phone,date_of_birth,gender\n"]
    lines += [
        f"First{i},Last{i},person{i}@example.org,{i:07d},555-{i % 10000:04d},1970-01-01,U\n"
        for i in range(rows)
    ]
    return "".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["validating", "applying"])
def test_a_kill_9_mid_import_leaves_every_row_exactly_once_after_restart(
    tmp_path: Path, empty_database_url: str, moment: str
) -> None:
    """SIGKILL in the middle of a 200,000-row import; the restarted daemon finishes it exactly once."""
    rows = 200_000
    run = DaemonRun(tmp_path, empty_database_url, WARDBULK_STABILITY_WINDOW_S="0")
    try:
        staged = tmp_path / "big.csv"
        staged.write_text(big_import(rows))
        process = run.start()
        staged.rename(run.inbox() / "big.csv")
        target = 40_000 if moment == "validating" else rows

        def progress() -> int:
            value = run.scalar("SELECT max(processed_records) FROM bulk_operations")
            return int(value) if isinstance(value, int) else 0

        wait_for(lambda: progress() >= target, timeout=120, what=f"{moment} progress")
        process.kill()
        process.wait()
        assert run.scalar("SELECT count(*) FROM bulk_operations WHERE status = 'completed'") == 0

        result = run_cli("run", "--once", cwd=tmp_path, env=run.env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert run.scalar("SELECT count(*) FROM patients") == rows
        assert run.scalar("SELECT count(DISTINCT mrn) FROM patients") == rows
        assert (
            run.scalar("SELECT count(*) FROM bulk_operations WHERE status IN ('pending', 'processing')") == 0
        )
        summary = run.summaries()["big"]
        assert (summary["status"], summary["successful_records"]) == ("completed", rows)
    finally:
        run.stop_all()


def test_the_running_daemon_purges_the_archive_on_its_schedule(daemon: DaemonRun) -> None:
    """The retention purge is a scheduled job of the daemon: it runs shortly after start, then daily."""
    old = daemon.root / "archive" / "import_patients" / "2020-01-01" / "old.op1.csv"
    old.parent.mkdir(parents=True)
    old.write_text("x")
    os.utime(old, (time.time() - 40 * 86_400,) * 2)
    process = daemon.start()
    wait_for(lambda: not old.exists(), timeout=15, what="archive purge")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "archive_purged" in daemon.log.read_text()


def test_two_daemons_with_a_schedule_write_one_report_per_period(daemon: DaemonRun) -> None:
    """The schedule fires in both running daemons; the database claim lets one of them write each report."""
    config = daemon.root / "scheduled.toml"
    config.write_text('[[schedules]]\nreport = "occupancy"\nevery = "1s"\n')
    daemon.env["WARDBULK_CONFIG"] = str(config)
    first, second = daemon.start(), daemon.start()
    reports = daemon.root / "outbox" / "reports"
    wait_for(
        lambda: len(list(reports.glob("occupancy-2*.csv"))) >= 3, timeout=30, what="three scheduled reports"
    )
    for process in (first, second):
        process.send_signal(signal.SIGTERM)
    assert [process.wait(timeout=30) for process in (first, second)] == [0, 0]
    files = {path.name for path in reports.glob("occupancy-2*.csv")}
    claimed = daemon.scalar("SELECT count(*) FROM scheduled_runs")
    assert claimed == len(files)  # a report without a claim, or two per claim, would break this
    assert (reports / "occupancy-latest.csv").is_file()

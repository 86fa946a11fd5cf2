"""`wardbulk ops wait FILE`: a sender drops a file and waits for its own summary, whatever its operation
id and however fast the daemon was, as the README's quick start does."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_daemon_e2e import DaemonRun


@pytest.fixture
def daemon(tmp_path: Path, empty_database_url: str) -> Iterator[DaemonRun]:
    run = DaemonRun(tmp_path, empty_database_url)
    yield run
    run.stop_all()


GOOD = "first_name,last_name,email\nAna,Lee,ana@example.org\n"
BAD = "first_name,last_name\nAna,Lee\n"


def drop(run: DaemonRun, name: str, content: str) -> Path:
    """Write under a temporary name and rename into the folder, as the README says to send."""
    target = run.inbox() / name
    temporary = target.with_name(name + ".tmp")
    temporary.write_text(content)
    os.replace(temporary, target)
    return target


def test_it_prints_the_summary_of_the_file_just_dropped_and_exits_0(daemon: DaemonRun) -> None:
    daemon.start()
    first = run_cli("ops", "wait", str(drop(daemon, "p.csv", GOOD)), cwd=daemon.root, env=daemon.env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["status"] == "completed"
    again = drop(daemon, "p.csv", GOOD.replace("ana@", "bo@"))  # the same name, a second operation
    second = run_cli("ops", "wait", str(again), cwd=daemon.root, env=daemon.env)
    assert json.loads(second.stdout)["operation_id"] > json.loads(first.stdout)["operation_id"]


def test_a_failed_file_prints_its_summary_and_exits_1(daemon: DaemonRun) -> None:
    daemon.start()
    result = run_cli("ops", "wait", str(drop(daemon, "bad.csv", BAD)), cwd=daemon.root, env=daemon.env)
    assert result.returncode == 1
    assert json.loads(result.stdout)["error_code"] == "missing-label"


def test_without_a_daemon_it_gives_up_after_the_timeout(daemon: DaemonRun) -> None:
    file = drop(daemon, "p.csv", GOOD)
    result = run_cli("ops", "wait", str(file), "--timeout", "0.5", cwd=daemon.root, env=daemon.env)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("(is the daemon running?)")


def test_a_file_outside_an_operation_folder_is_a_usage_error(daemon: DaemonRun) -> None:
    result = run_cli("ops", "wait", str(daemon.root / "p.csv"), cwd=daemon.root, env=daemon.env)
    assert result.returncode == 2
    assert "is not in an operation folder of the inbox" in result.stderr


def test_a_file_claimed_but_not_registered_yet_is_waited_for_not_mistaken_for_the_last_one(
    daemon: DaemonRun,
) -> None:
    """Between the claim and the registration, the name's newest operation is yesterday's: not this
    file's. With the claimed copy in the processing area, the wait is for an operation after the start."""
    from processor.cli.waiting import WaitTimedOut, wait_for_summary
    from processor.settings import Settings

    daemon.start()
    first = run_cli("ops", "wait", str(drop(daemon, "p.csv", GOOD)), cwd=daemon.root, env=daemon.env)
    assert first.returncode == 0
    daemon.stop_all()
    claimed = daemon.root / "inbox" / ".processing" / "import_patients" / "new~host~1~abc__p.csv"
    claimed.parent.mkdir(parents=True, exist_ok=True)
    claimed.write_text(GOOD)
    settings = Settings(database_url=daemon.database_url, inbox_dir=daemon.root / "inbox")
    from sqlalchemy import create_engine

    engine = create_engine(daemon.database_url)
    try:
        with pytest.raises(WaitTimedOut):
            wait_for_summary(
                engine, settings.inbox_dir, daemon.root / "outbox", daemon.inbox() / "p.csv", 0.3
            )
    finally:
        engine.dispose()

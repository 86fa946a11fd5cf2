"""Processed originals are kept archive_retention_days, then purged by the daemon's scheduled job."""

from __future__ import annotations

import os
import time
from pathlib import Path

from processor.adapters.retention import purge_archive
from processor.bootstrap import build_daemon
from tests.conftest import Workspace

DAY = 86_400


def archived(root: Path, name: str, age_days: float) -> Path:
    path = root / "archive" / "import_patients" / "2026-01-01" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    then = time.time() - age_days * DAY
    os.utime(path, (then, then))
    return path


def test_files_older_than_the_retention_are_deleted_and_newer_ones_kept(tmp_path: Path) -> None:
    old = archived(tmp_path, "old.op1.csv", age_days=31)
    recent = archived(tmp_path, "recent.op2.csv", age_days=29)
    assert purge_archive(tmp_path / "archive", retention_days=30) == 1
    assert not old.exists() and recent.exists()


def test_empty_date_folders_are_removed(tmp_path: Path) -> None:
    old = archived(tmp_path, "old.op1.csv", age_days=40)
    purge_archive(tmp_path / "archive", retention_days=30)
    assert not old.parent.exists()


def test_archiving_starts_the_retention_clock_whatever_the_senders_mtime(workspace: Workspace) -> None:
    """A file copied with a months-old mtime is not purged the day it is archived."""
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email\nA,A,a@example.org\n",
        mtime=time.time() - 90 * DAY,
    )
    workspace.run_once()
    assert build_daemon(workspace.app).companions.purge_archive() == 0
    assert len(list((workspace.root / "archive").rglob("p.op1.csv"))) == 1

"""Outbox retention: files that carry patient data leave the outbox after outbox_retention_days, by the
daemon's daily job or by `wardbulk purge` from cron; the -latest copies and the dashboard stay, and the
operations whose files went are marked so that the history says so."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from processor.adapters.outbox import report_operation_id
from processor.adapters.retention import operation_tags, purge_outbox
from tests.conftest import Workspace, run_cli

DAY = 86_400
CONTENT_OK = "first_name,last_name,email\nA,A,a@example.org\n"


def aged(path: Path, age_days: float, content: str = "x") -> Path:
    """A file (its folder made) whose modification time is ``age_days`` ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    then = time.time() - age_days * DAY
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def test_expired_outputs_rejected_originals_notifications_and_reports_go(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    expired = [
        aged(outbox / "import_patients" / "p.op3.result.csv", 31),
        aged(outbox / "import_patients" / "p.op3.errors.csv", 31),
        aged(outbox / "import_patients" / "p.op3.summary.json", 31),
        aged(outbox / "import_patients" / "rejected" / "bad.op4.csv", 31),
        aged(outbox / "notifications" / "a.op5.notifications.csv", 31),
        aged(outbox / "reports" / "occupancy-20261001T000000Z-op6-line2.csv", 31),
    ]
    purge = purge_outbox(outbox, retention_days=30)
    assert sorted(purge.removed) == sorted(expired)
    assert not any(path.exists() for path in expired)
    assert purge.operation_ids == {3, 4, 5, 6}


def test_young_files_latest_copies_the_dashboard_and_partials_stay(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    kept = [
        aged(outbox / "import_patients" / "p.op9.summary.json", 29),
        aged(outbox / "reports" / "occupancy-latest.csv", 400),
        aged(outbox / "dashboard.html", 400),
        aged(outbox / "import_patients" / ".p.op9.result.csv.owner.partial", 400),
    ]
    assert purge_outbox(outbox, retention_days=30).removed == []
    assert all(path.exists() for path in kept)


def test_a_dry_run_says_what_would_go_and_deletes_nothing(tmp_path: Path) -> None:
    old = aged(tmp_path / "outbox" / "sync_beds" / "b.op2.result.csv", 60)
    purge = purge_outbox(tmp_path / "outbox", retention_days=30, dry_run=True)
    assert (purge.removed, purge.operation_ids) == ([old], {2})
    assert old.exists()


def test_a_rejected_link_goes_without_what_it_names_and_a_refused_folder_goes_whole(tmp_path: Path) -> None:
    """Rejected entries are judged and removed as themselves: a symlink is never followed."""
    outside = aged(tmp_path / "elsewhere" / "kept.csv", 60)
    rejected = tmp_path / "outbox" / "bulk_discharge" / "rejected"
    rejected.mkdir(parents=True)
    link = rejected / "link.op1.csv"
    link.symlink_to(outside)
    os.utime(link, (time.time() - 60 * DAY,) * 2, follow_symlinks=False)
    folder = aged(rejected / "folder.op2.csv" / "inside.csv", 60).parent
    os.utime(folder, (time.time() - 60 * DAY,) * 2)
    purge_outbox(tmp_path / "outbox", retention_days=30)
    assert not os.path.lexists(link) and not folder.exists()
    assert outside.exists()


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        ("p.op3.result.csv", [3]),
        ("x.op1.op7.summary.json", [7, 1]),  # a sender's own "op1" comes before wardbulk's
        ("data.op7.op3", [3, 7]),  # "data.op3" rejected as 7: the name alone cannot tell
        ("report.csv", []),
        ("shop12.csv", []),
    ],
)
def test_the_operations_an_outbox_name_may_belong_to_are_its_op_tags(name: str, tags: list[int]) -> None:
    assert operation_tags(name) == tags


@pytest.mark.parametrize(
    ("name", "operation_id"),
    [
        ("occupancy-CARD-20261001T000000Z-op12-line3.csv", 12),
        ("export_patients-20261001T000000Z-op4.csv", 4),
        ("occupancy-latest.csv", None),
        ("occupancy-20261001T000000Z-sched1.csv", None),
    ],
)
def test_a_report_belongs_to_the_operation_its_tag_names(name: str, operation_id: int | None) -> None:
    assert report_operation_id(name) == operation_id


def cli_env(workspace: Workspace) -> dict[str, str]:
    return {
        "WARDBULK_DATABASE_URL": workspace.database.url,
        "WARDBULK_INBOX_DIR": str(workspace.inbox),
        "WARDBULK_OUTBOX_DIR": str(workspace.outbox),
        "WARDBULK_ARCHIVE_DIR": str(workspace.root / "archive"),
    }


def processed_and_aged(workspace: Workspace, age_days: float) -> list[Path]:
    """One import processed, its outputs and archived original made ``age_days`` old."""
    workspace.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\n")
    workspace.run_once()
    files = [*workspace.outbox.rglob("p.op1.*"), *(workspace.root / "archive").rglob("p.op1.csv")]
    for path in files:
        os.utime(path, (time.time() - age_days * DAY,) * 2)
    return files


def test_wardbulk_purge_deletes_expired_files_and_marks_their_operation(workspace: Workspace) -> None:
    files = processed_and_aged(workspace, 31)
    assert len(files) == 4  # result, errors, summary and the archived original
    env = cli_env(workspace)
    dry = run_cli("purge", "--dry-run", cwd=workspace.root, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would delete 1 archived originals and 3 outbox files" in dry.stdout
    assert all(path.exists() for path in files)

    done = json.loads(run_cli("purge", "--json", cwd=workspace.root, env=env).stdout)
    assert (len(done["archive"]), len(done["outbox"]), done["operations_marked"]) == (1, 3, 1)
    assert not any(path.exists() for path in files)
    shown = json.loads(run_cli("ops", "show", "1", "--json", cwd=workspace.root, env=env).stdout)
    assert shown["outputs"] == [] and shown["outputs_purged_at"] is not None
    again = json.loads(run_cli("purge", "--json", cwd=workspace.root, env=env).stdout)
    assert (again["outbox"], again["operations_marked"]) == ([], 0)


def test_the_daemons_daily_job_purges_the_outbox_too(workspace: Workspace) -> None:
    processed_and_aged(workspace, 31)
    from processor.bootstrap import build_daemon

    build_daemon(workspace.app).companions.purge_expired()
    assert list(workspace.outbox.rglob("p.op1.*")) == []
    assert workspace.scalar("SELECT outputs_purged_at IS NOT NULL FROM bulk_operations WHERE id = 1")


def test_a_rejected_original_counts_its_age_from_its_rejection_not_from_the_senders_copy(
    workspace: Workspace,
) -> None:
    """A copy keeps a months-old modification time; rejected today, it stays its full retention."""
    workspace.drop("import_patients", "bad.csv", "first_name,last_name\nA,B\n", mtime=time.time() - 90 * DAY)
    workspace.run_once()
    [rejected] = (workspace.outbox / "import_patients" / "rejected").iterdir()
    from processor.bootstrap import build_daemon

    build_daemon(workspace.app).companions.purge_expired()
    assert rejected.exists()


def test_an_entry_that_cannot_be_deleted_is_reported_and_the_others_go(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from processor.adapters import retention
    from processor.housekeeping import purge_expired

    files = processed_and_aged(workspace, 31)
    stuck = next(path for path in files if path.name.endswith(".summary.json"))
    real_remove = retention._remove

    def refuse_one(entry: Path) -> None:
        if entry == stuck:
            raise PermissionError(13, "Permission denied")
        real_remove(entry)

    monkeypatch.setattr(retention, "_remove", refuse_one)
    done = purge_expired(workspace.settings, workspace.database.engine, datetime.now(UTC))
    assert done.failed == [stuck] and stuck.exists()
    assert [path for path in files if path != stuck and path.exists()] == []


def test_only_the_operation_a_file_belongs_to_is_marked_whatever_its_name_holds(
    workspace: Workspace,
) -> None:
    """``data.op1`` rejected as operation 2 becomes ``data.op2.op1``: operation 2's, not 1's."""
    from processor.housekeeping import purge_expired

    workspace.drop("import_patients", "p.csv", CONTENT_OK)
    workspace.run_once()
    workspace.drop("import_patients", "data.op1", "first_name,last_name\nA,B\n")
    workspace.run_once()
    [rejected] = (workspace.outbox / "import_patients" / "rejected").iterdir()
    assert rejected.name == "data.op2.op1"
    os.utime(rejected, (time.time() - 31 * DAY,) * 2)
    done = purge_expired(workspace.settings, workspace.database.engine, datetime.now(UTC))
    assert (done.outbox, done.operations_marked) == ([rejected], 1)
    marked = workspace.scalar("SELECT id FROM bulk_operations WHERE outputs_purged_at IS NOT NULL")
    assert marked == 2

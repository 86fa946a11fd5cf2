"""Leave nothing behind (issue 18): a kill -9 at any step of a file, then a restart, leaves the file
applied exactly once, its summary published, and no spool, partial or half-made copy anywhere.

Each trial runs the real command line (``wardbulk run --once``) in a process that kills itself with
SIGKILL at one step (the step's function is wrapped there, nothing else changes), then runs it again as
a user would after a crash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.test_full_disk import cannot_mount, mount_tmpfs

ROWS = 2_000
CRASHER = """
import os, shutil, signal, sys

from processor.adapters import inbox
from processor.adapters.database.lifecycle import Lifecycle
from processor.pipeline import handler, publishing
from processor.pipeline.file_job import FileJob


def killed(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def then_killed(step):
    def wrapped(*args, **kwargs):
        step(*args, **kwargs)
        killed()

    return wrapped


STEPS = {
    "validated": lambda: setattr(handler, "validate_to_spool", then_killed(handler.validate_to_spool)),
    "committing": lambda: setattr(Lifecycle, "complete", then_killed(Lifecycle.complete)),
    "published": lambda: setattr(publishing, "publish_outboxes", then_killed(publishing.publish_outboxes)),
    "leftovers": lambda: setattr(FileJob, "discard_leftovers", killed),
    "archiving": lambda: setattr(inbox, "archive", killed),
    "copying": lambda: setattr(shutil, "copy2", then_killed(shutil.copy2)),
    "archived": lambda: setattr(inbox, "archive", then_killed(inbox.archive)),
}
STEPS[sys.argv[1]]()
from processor.cli import main

main(["run", "--once"])
"""


def patients_file(rows: int) -> str:
    body = "".join(f"K{i},L{i},k{i}@example.org,{i:07d}\n" for i in range(rows))
    return "first_name,last_name,email,patient_id\n" + body


def temporaries(root: Path) -> list[Path]:
    """Every file that is not where a finished file belongs: hidden files anywhere, and anything left in
    the processing area."""
    hidden = [path for path in root.rglob(".*") if path.is_file()]
    processing = root / "inbox" / ".processing"
    return hidden + [path for path in processing.rglob("*") if path.is_file() and path not in hidden]


def crash_then_restart(root: Path, env: dict[str, str], step: str) -> None:
    (root / "inbox" / "import_patients" / "k.csv").write_text(patients_file(ROWS))
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHER, step],
        cwd=root,
        env={k: v for k, v in os.environ.items() if not k.startswith("WARDBULK_")} | env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    restarted = run_cli("run", "--once", cwd=root, env=env, timeout=120)
    assert restarted.returncode == 0, restarted.stderr


def assert_applied_once_and_clean(root: Path, env: dict[str, str]) -> None:
    summaries = list((root / "outbox" / "import_patients").glob("k.op*.summary.json"))
    assert [path.name for path in summaries] == ["k.op1.summary.json"]
    assert '"status": "completed"' in summaries[0].read_text()
    assert len(list((root / "archive").rglob("k.op1.csv"))) == 1
    assert temporaries(root) == []
    stats = run_cli("ops", "stats", "--json", cwd=root, env=env)
    assert f'"successful_records": {ROWS}' in stats.stdout


def installed(root: Path, **settings: str) -> dict[str, str]:
    env = {
        "WARDBULK_DATABASE_URL": f"sqlite:///{root / 'wardbulk.sqlite3'}",
        "WARDBULK_INBOX_DIR": str(root / "inbox"),
        "WARDBULK_OUTBOX_DIR": str(root / "outbox"),
        "WARDBULK_ARCHIVE_DIR": str(root / "archive"),
        "WARDBULK_STABILITY_WINDOW_S": "0",
        "WARDBULK_LOG_FORMAT": "json",
        **settings,
    }
    assert run_cli("init", cwd=root, env=env).returncode == 0
    return env


@pytest.mark.parametrize(
    "step", ["validated", "committing", "published", "leftovers", "archiving", "archived"]
)
def test_a_kill_at_any_step_leaves_nothing_behind_after_the_restart(tmp_path: Path, step: str) -> None:
    env = installed(tmp_path)
    crash_then_restart(tmp_path, env, step)
    assert_applied_once_and_clean(tmp_path, env)


def test_a_kill_mid_copy_to_an_archive_on_another_filesystem_leaves_no_half_copy(tmp_path: Path) -> None:
    """The archive on its own filesystem: the input is copied there, under a temporary name."""
    archive = tmp_path / "archive"
    archive.mkdir()
    reason = mount_tmpfs(archive, "size=64m")
    if reason is not None:
        cannot_mount(reason)
    try:
        env = installed(tmp_path, WARDBULK_FREE_SPACE_RESERVE_MB="0")
        crash_then_restart(tmp_path, env, "copying")
        assert_applied_once_and_clean(tmp_path, env)
    finally:
        subprocess.run(["umount", "-l", str(archive)], check=False)

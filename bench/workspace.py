"""A wardbulk workspace for one case: its own database, inbox, outbox and archive, driven as processes.

Contract: every wardbulk command runs as a child process configured only by environment variables (the
caller's ``WARDBULK_*`` variables are dropped, and no config file is read: the working directory is the
workspace, which has none). ``process`` checks the run: exit status 0 and a summary saying ``completed``
with exactly the expected successful rows and no failed row, else ``BenchFailure``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import BenchFailure, ProcessRun, run_measured

# The 5M-row file is larger than the default 512 MiB limit; the limit is a guard, not what is measured.
MAX_FILE_BYTES = 16 * 2**30
_OPERATION_NUMBER = re.compile(r"\.op(\d+)\.summary\.json$")


def wardbulk_command() -> list[str]:
    """The ``wardbulk`` console script next to this Python (the venv's), else ``python -m processor``."""
    script = Path(sys.executable).parent / "wardbulk"
    return [str(script)] if script.exists() else [sys.executable, "-m", "processor"]


def clean_environment() -> dict[str, str]:
    """This process's environment without any ``WARDBULK_`` variable."""
    return {key: value for key, value in os.environ.items() if not key.startswith("WARDBULK_")}


@dataclass(frozen=True)
class Processed:
    """A measured ``wardbulk process`` run and the summary.json it wrote."""

    run: ProcessRun
    summary: dict[str, Any]

    @property
    def rows_per_s(self) -> float:
        """Successful rows per second of the whole process's wall time."""
        return float(self.summary["successful_records"]) / self.run.wall_s


@dataclass
class Workspace:
    """Folders and database of one case under ``root``; ``database_url`` defaults to a SQLite file there."""

    root: Path
    database_url: str = ""
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.root / 'wardbulk.sqlite3'}"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def env(self) -> dict[str, str]:
        """The environment of every wardbulk process of this workspace."""
        env = clean_environment()
        env.update(
            WARDBULK_DATABASE_URL=self.database_url,
            WARDBULK_INBOX_DIR=str(self.inbox),
            WARDBULK_OUTBOX_DIR=str(self.outbox),
            WARDBULK_ARCHIVE_DIR=str(self.root / "archive"),
            WARDBULK_MAX_FILE_BYTES=str(MAX_FILE_BYTES),
        )
        env.update(self.settings)
        return env

    def wardbulk(self, name: str, *args: str | Path) -> ProcessRun:
        """Run ``wardbulk ARGS`` measured, stdout and stderr in ``logs/<name>.log``; checked for exit 0."""
        command = [*wardbulk_command(), *args]
        return run_measured(command, self.logs / f"{name}.log", self.env(), self.root).check()

    def init(self, demo: bool = False) -> ProcessRun:
        """``wardbulk init``: folders and schema."""
        return self.wardbulk("init", "init", *(["--demo"] if demo else []))

    def process(self, file: Path, operation: str, expected_ok: int) -> Processed:
        """``wardbulk process FILE --operation OP``, measured and checked against ``expected_ok`` rows."""
        run = self.wardbulk(f"process-{file.stem}", "process", file, "--operation", operation)
        summary = self.latest_summary(operation, file.stem)
        check_summary(summary, expected_ok, f"{operation} of {file.name}")
        return Processed(run, summary)

    def latest_summary(self, operation: str, stem: str) -> dict[str, Any]:
        """The summary.json of the newest operation on a file named ``stem``; ``BenchFailure`` if none."""
        found = sorted(
            (self.outbox / operation).glob(f"{stem}.op*.summary.json"), key=_operation_number, reverse=True
        )
        if not found:
            raise BenchFailure(f"no summary for {stem} in {self.outbox / operation}")
        loaded: dict[str, Any] = json.loads(found[0].read_text(encoding="utf-8"))
        return loaded


def _operation_number(path: Path) -> int:
    match = _OPERATION_NUMBER.search(path.name)
    return int(match.group(1)) if match else -1


def check_summary(summary: dict[str, Any], expected_ok: int, what: str) -> None:
    """``BenchFailure`` unless the summary says completed, ``expected_ok`` rows applied and none failed."""
    got = (summary.get("status"), summary.get("successful_records"), summary.get("failed_records"))
    if got != ("completed", expected_ok, 0):
        raise BenchFailure(
            f"{what}: expected completed with {expected_ok} rows applied and 0 failed, got status "
            f"{got[0]}, {got[1]} applied, {got[2]} failed (error_code {summary.get('error_code')}, "
            f"errors_by_code {summary.get('errors_by_code')})"
        )

"""What a result was measured on: commit (and whether the tree was dirty), machine, versions, date."""

from __future__ import annotations

import compileall
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import BenchFailure, best_of, run_measured
from bench.workspace import clean_environment, wardbulk_command

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_RUNS = 3


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def _sqlite_cli_version() -> str:
    done = subprocess.run(["/usr/bin/sqlite3", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.split(" ")[0] if done.returncode == 0 else "unknown"


def wardbulk_startup_s() -> float | None:
    """Best wall time of ``wardbulk --version``: the start-up every wardbulk process pays (None if it
    fails: the cases will say why)."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "version.log"
        try:
            runs = [
                run_measured(
                    [*wardbulk_command(), "--version"], log, clean_environment(), Path(folder)
                ).check()
                for _ in range(STARTUP_RUNS)
            ]
        except BenchFailure:
            return None
    return round(best_of([run.wall_s for run in runs]), 4)


def compile_wardbulk() -> int:
    """Compile wardbulk's modules to bytecode, as installing a package does, and return how many were
    compiled. The checkout is installed editable: with ``PYTHONDONTWRITEBYTECODE=1`` (set on some
    machines, CI's among them) no process ever writes them, and every wardbulk process would compile its
    hundred-odd modules again, some 0.2 s that a deployed wardbulk does not pay. Python reads bytecode
    whatever that variable says, and recompiles a module whose source changed."""
    before = sum(1 for _ in (REPO_ROOT / "processor").rglob("*.pyc"))
    compileall.compile_dir(REPO_ROOT / "processor", quiet=1)
    return sum(1 for _ in (REPO_ROOT / "processor").rglob("*.pyc")) - before


def run_metadata(command: str, scale: float, cases: list[str]) -> dict[str, Any]:
    """The run's metadata; ``dirty`` is true when ``git status`` shows any change (untracked included).
    wardbulk's bytecode is compiled first (``compile_wardbulk``), so that start-up is measured as
    deployed."""
    compiled = compile_wardbulk()
    return {
        "bytecode_compiled": compiled,
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain")),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "scale": scale,
        "cases": cases,
        "nproc": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite_cli": _sqlite_cli_version(),
        "python_executable": sys.executable,
        "wardbulk_startup_s": wardbulk_startup_s(),
    }

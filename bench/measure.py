"""Whole-process measurements: wall time (``time.perf_counter``) and the child's peak RSS (``os.wait4``).

Every measured program runs as its own process, so start-up, imports and teardown are counted on both
sides of a comparison, and the peak RSS is that process's alone (``ru_maxrss``, KiB on Linux). Each is
started through ``bench/launcher.py``, a few-MB process that forks it and takes both measurements, so
that the benchmark's own size does not leak into the child's ``ru_maxrss``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class BenchFailure(Exception):
    """A measured program failed or did the wrong thing: its figure would be meaningless."""


@dataclass(frozen=True)
class ProcessRun:
    """One finished process: its command, exit status, wall time, peak RSS and where its output went."""

    command: tuple[str, ...]
    returncode: int
    wall_s: float
    peak_rss_kib: int
    log: Path

    @property
    def peak_rss_mb(self) -> float:
        """Peak RSS in MB (10**6 bytes)."""
        return self.peak_rss_kib * 1024 / 1e6

    def tail(self, lines: int = 15) -> str:
        """The last lines of the process's combined output, for error messages."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self) -> ProcessRun:
        """Itself if it exited 0; else ``BenchFailure`` naming the command and the end of its output."""
        if self.returncode != 0:
            raise BenchFailure(
                f"{' '.join(self.command)} exited {self.returncode} (log {self.log}):\n{self.tail()}"
            )
        return self


LAUNCHER = Path(__file__).resolve().parent / "launcher.py"


def _launched(command: Sequence[str | Path], result_file: Path) -> list[str]:
    """``command`` behind the small launcher (see ``bench/launcher.py``: why the RSS needs it)."""
    return [sys.executable, "-I", "-S", str(LAUNCHER), str(result_file), *(str(part) for part in command)]


def _read_result(command: tuple[str, ...], result_file: Path, log: Path, launcher_code: int) -> ProcessRun:
    """The launcher's measurement; if it wrote none, the launcher's exit code (never 0) and no figures."""
    try:
        code, wall, rss = result_file.read_text(encoding="ascii").split()
    except (OSError, ValueError):
        return ProcessRun(command, launcher_code or -1, 0.0, 0, log)
    finally:
        result_file.unlink(missing_ok=True)
    return ProcessRun(command, int(code), float(wall), int(rss), log)


def run_measured(
    command: Sequence[str | Path],
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: Path | None = None,
) -> ProcessRun:
    """Run ``command`` to its end and measure it; stderr (and stdout unless given its own file) go to ``log``.

    The launcher starts the clock just before it forks the command and stops it when ``wait4`` reaps it.
    """
    args = tuple(str(part) for part in command)
    log.parent.mkdir(parents=True, exist_ok=True)
    result_file = log.with_suffix(".rusage")
    with log.open("wb") as err, (stdout or Path(os.devnull)).open("wb") as out:
        launcher = subprocess.Popen(
            _launched(args, result_file),
            stdout=out if stdout else err,
            stderr=err,
            env=dict(env) if env else None,
            cwd=cwd,
        )
        _, status, _ = os.wait4(launcher.pid, 0)
    launcher.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: Popen must not wait again
    return _read_result(args, result_file, log, launcher.returncode)


@dataclass(frozen=True)
class StartedProcess:
    """A process left running (the daemon) behind the launcher, in its own process group.

    ``terminate`` sends SIGTERM (the launcher forwards it); ``finish`` reaps it and measures it like
    ``run_measured``; ``kill`` ends the launcher and the command at once.
    """

    launcher: subprocess.Popen[bytes]
    command: tuple[str, ...]
    log: Path
    result_file: Path

    def running(self) -> bool:
        """True while the launcher (and so the command) has not exited."""
        return self.launcher.poll() is None

    def terminate(self) -> None:
        """Ask the command to stop (SIGTERM)."""
        self.launcher.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the launcher's process group (the launcher and the command) and reap the launcher."""
        if self.running():
            os.killpg(self.launcher.pid, signal.SIGKILL)
        self.launcher.wait()

    def finish(self, timeout_s: float) -> ProcessRun:
        """Wait for the command to end (killing it after ``timeout_s``) and return its measurement."""
        try:
            self.launcher.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchFailure(
                f"{' '.join(self.command)} did not stop within {timeout_s:.0f} s (log {self.log})"
            ) from None
        return _read_result(self.command, self.result_file, self.log, self.launcher.returncode)


def start_process(
    command: Sequence[str | Path], log: Path, env: Mapping[str, str], cwd: Path
) -> StartedProcess:
    """Start ``command`` in the background behind the launcher, its stdout and stderr going to ``log``."""
    args = tuple(str(part) for part in command)
    log.parent.mkdir(parents=True, exist_ok=True)
    result_file = log.with_suffix(".rusage")
    with log.open("wb") as out:
        launcher = subprocess.Popen(
            _launched(args, result_file),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return StartedProcess(launcher, args, log, result_file)


def best_of(values: Sequence[float]) -> float:
    """The smallest of ``values`` (the run least disturbed by the rest of the machine)."""
    return min(values)


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values``, by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


REPO_ROOT = Path(__file__).resolve().parent.parent


def python_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default this process's) with the repository on ``PYTHONPATH``, so ``bench`` imports."""
    child_env = dict(env if env is not None else os.environ)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), child_env.get("PYTHONPATH")]))
    return child_env


def run_module(
    module: str, args: Sequence[str | Path], log: Path, env: Mapping[str, str] | None = None
) -> tuple[ProcessRun, str]:
    """Run ``python -m MODULE ARGS`` with this Python, measured and checked for exit 0; the measurement
    and the process's stdout (its stderr goes to ``log``)."""
    output = log.with_suffix(".out")
    command = [sys.executable, "-m", module, *args]
    run = run_measured(command, log, python_env(env), REPO_ROOT, stdout=output).check()
    return run, output.read_text(encoding="utf-8")

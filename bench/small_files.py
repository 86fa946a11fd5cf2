"""Case 4: small import_patients files dropped into a running daemon, in a burst and at a steady pace.

For each measurement a daemon (``wardbulk run``) starts on a fresh SQLite workspace; once it logs
``daemon_watching``, every file is written as ``<name>.csv.tmp`` in its inbox folder and renamed to
``<name>.csv`` (a careful upstream's drop, ready at once), recording the wall-clock time of each rename.
A file's latency is when its summary.json was renamed into place (the summary is the last outbox file)
minus its drop time. The daemon is then stopped with SIGTERM and must exit 0.

- **Burst**: 1,000 files dropped as fast as possible. Throughput is files over the time from the first
  drop to the last summary (target ≥ 300 files/s, issue 16); its latencies include the wait behind the
  files dropped earlier, and are a figure without a target.
- **Steady state**: 20 files/s for 60 s (the file count scaled, at least 3 s of drops), each drop at its
  own time on a fixed schedule: p50, p95 and max latency (target p95 ≤ 0.3 s, issue 16).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import datagen
from bench.context import BenchContext
from bench.measure import BenchFailure, StartedProcess, percentile, start_process
from bench.results import CaseResult, Figure
from bench.workspace import Workspace, check_summary, wardbulk_command

FILES = 1_000
ROWS_PER_FILE = 10
STABILITY_WINDOW_S = 0.25
FILES_PER_S_TARGET = 300.0
STEADY_FILES_PER_S = 20.0
STEADY_SECONDS = 60.0
STEADY_MIN_SECONDS = 3.0  # at a small scale the pace is kept, the duration shortened to no less than this
STEADY_P95_TARGET_S = 0.3
WATCHING_TIMEOUT_S = 60.0
POLL_S = 0.2
# Patients of this case are numbered from here, apart from those of the other cases' files.
FIRST_PATIENT = 50_000_000


@dataclass(frozen=True)
class Drop:
    """One dropped file: its stem and when it was renamed into the inbox (``time.time()``)."""

    stem: str
    dropped_at: float


def _prepare_files(ctx: BenchContext, count: int, prefix: str = "drop") -> list[Path]:
    """``count`` files of ``ROWS_PER_FILE`` distinct patients, written ahead of time (not measured);
    each ``prefix`` numbers its patients apart from the others'."""
    folder = ctx.data / "small-files"
    folder.mkdir(exist_ok=True)
    files = []
    offset = 0 if prefix == "drop" else 1_000_000
    for index in range(count):
        path = folder / f"{prefix}-{index:05d}.csv"
        first = FIRST_PATIENT + (offset + index) * ROWS_PER_FILE
        datagen.write_import_patients(path, ROWS_PER_FILE, first, ctx.seed)
        files.append(path)
    return files


def _wait_until_watching(daemon: StartedProcess) -> None:
    deadline = time.monotonic() + WATCHING_TIMEOUT_S
    while time.monotonic() < deadline:
        if not daemon.running():
            raise BenchFailure(f"the daemon exited before watching (log {daemon.log})")
        if b"daemon_watching" in daemon.log.read_bytes():
            return
        time.sleep(0.05)
    raise BenchFailure(f"the daemon did not log daemon_watching within {WATCHING_TIMEOUT_S:.0f} s")


def _drop(file: Path, inbox: Path) -> Drop:
    """Copy the file in as ``.tmp`` and rename it to its name, recording the time of the rename."""
    temporary = inbox / f"{file.name}.tmp"
    temporary.write_bytes(file.read_bytes())
    os.rename(temporary, inbox / file.name)
    return Drop(file.stem, time.time())


def _drop_all(files: list[Path], inbox: Path) -> list[Drop]:
    """Every file dropped at once, one after another."""
    return [_drop(file, inbox) for file in files]


def _drop_paced(files: list[Path], inbox: Path, files_per_s: float = STEADY_FILES_PER_S) -> list[Drop]:
    """File ``i`` dropped at ``i / files_per_s`` s after the first, on a fixed schedule (a late drop
    does not shift the ones after it)."""
    drops = []
    start = time.monotonic()
    for index, file in enumerate(files):
        delay = start + index / files_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        drops.append(_drop(file, inbox))
    return drops


def _summaries(outbox: Path) -> dict[str, Path]:
    """Summary files by input stem (``drop-00001.op7.summary.json`` -> ``drop-00001``), refused ones too."""
    found = [*outbox.glob("*.summary.json"), *outbox.glob("rejected/*.summary.json")]
    return {path.name.split(".op")[0]: path for path in found}


def _wait_for_summaries(outbox: Path, count: int, timeout_s: float) -> dict[str, Path]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = _summaries(outbox)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise BenchFailure(f"only {len(found)} of {count} summaries after {timeout_s:.0f} s")
        time.sleep(POLL_S)


def _latencies(drops: list[Drop], summaries: dict[str, Path]) -> dict[str, float]:
    """Latency by stem, each summary checked (completed, all rows applied)."""
    latencies = {}
    for drop in drops:
        path = summaries[drop.stem]
        check_summary(json.loads(path.read_text(encoding="utf-8")), ROWS_PER_FILE, path.name)
        latencies[drop.stem] = _published_at(path) - drop.dropped_at
    return latencies


def _published_at(summary: Path) -> float:
    """When the summary was renamed into place: its ``st_ctime``, which the rename sets. (Its
    ``st_mtime`` is when its temporary file was written, before the file's commit and publishing.)"""
    return summary.stat().st_ctime


def _service_times(summaries: dict[str, Path]) -> list[float]:
    """The daemon's own time per file (summary ``duration_s``): latency without the queue."""
    return [float(json.loads(path.read_text(encoding="utf-8"))["duration_s"]) for path in summaries.values()]


def _stop(daemon: StartedProcess) -> dict[str, Any]:
    daemon.terminate()
    run = daemon.finish(timeout_s=60).check()
    return {"daemon_wall_s": round(run.wall_s, 3), "daemon_peak_rss_mb": round(run.peak_rss_mb, 1)}


def _measure(
    workspace: Workspace, files: list[Path], drop: Callable[[list[Path], Path], list[Drop]] = _drop_all
) -> tuple[list[Drop], dict[str, Path], dict[str, Any]]:
    """Start ``wardbulk run``, ``drop`` the files into its import_patients inbox, wait for every
    summary, stop the daemon."""
    daemon = start_process(
        [*wardbulk_command(), "run"], workspace.logs / "daemon.log", workspace.env(), workspace.root
    )
    try:
        _wait_until_watching(daemon)
        drops = drop(files, workspace.inbox / "import_patients")
        summaries = _wait_for_summaries(workspace.outbox / "import_patients", len(files), 60 + len(files) / 5)
    except BaseException:
        daemon.kill()
        raise
    return drops, summaries, _stop(daemon)


def _figures(count: int, latencies: list[float], elapsed: float) -> list[Figure]:
    """The burst's: files/s (targeted), then its p50 and p95 latency (context: the wait in the queue)."""
    rate = count / elapsed
    return [
        Figure(
            "small_files",
            f"burst: {count:,} files of {ROWS_PER_FILE} rows",
            rate,
            "files/s",
            f"≥ {FILES_PER_S_TARGET:.0f} files/s",
            rate >= FILES_PER_S_TARGET,
        ),
        Figure("small_files", "burst: latency drop → summary, p50", percentile(latencies, 0.5), "s"),
        Figure("small_files", "burst: latency drop → summary, p95", percentile(latencies, 0.95), "s"),
    ]


def _steady_figures(count: int, latencies: list[float]) -> list[Figure]:
    """The steady state's p50, p95 (targeted) and max latency."""
    pace = f"steady {STEADY_FILES_PER_S:.0f} files/s, {count:,} files"
    p95 = percentile(latencies, 0.95)
    return [
        Figure("small_files", f"{pace}: latency p50", percentile(latencies, 0.5), "s"),
        Figure(
            "small_files",
            f"{pace}: latency p95",
            p95,
            "s",
            f"≤ {STEADY_P95_TARGET_S} s",
            p95 <= STEADY_P95_TARGET_S,
        ),
        Figure("small_files", f"{pace}: latency max", max(latencies), "s"),
    ]


def _details(
    drops: list[Drop], latencies: list[float], service: list[float], elapsed: float
) -> dict[str, Any]:
    return {
        "files": len(drops),
        "rows_per_file": ROWS_PER_FILE,
        "stability_window_s": STABILITY_WINDOW_S,
        "latency_clock": (
            "summary.json st_ctime (its rename into place) minus time.time() just after"
            " the rename into the inbox"
        ),
        "drop_span_s": round(drops[-1].dropped_at - drops[0].dropped_at, 4),
        "first_drop_to_last_summary_s": round(elapsed, 4),
        "latency_s": {
            "p50": round(percentile(latencies, 0.5), 4),
            "p95": round(percentile(latencies, 0.95), 4),
            "max": round(max(latencies), 4),
        },
        "service_time_s": {
            "p50": round(percentile(service, 0.5), 4),
            "p95": round(percentile(service, 0.95), 4),
        },
        "latencies_ms_sorted": sorted(round(value * 1000, 1) for value in latencies),
    }


def _steady_count(ctx: BenchContext) -> int:
    """Files of the steady state: 60 s at the pace, scaled, but never under ``STEADY_MIN_SECONDS``."""
    return max(
        ctx.rows(round(STEADY_FILES_PER_S * STEADY_SECONDS)), round(STEADY_FILES_PER_S * STEADY_MIN_SECONDS)
    )


def _burst(ctx: BenchContext, result: CaseResult) -> None:
    count = ctx.rows(FILES)
    files = _prepare_files(ctx, count)
    workspace = ctx.workspace("small-files", WARDBULK_STABILITY_WINDOW_S=str(STABILITY_WINDOW_S))
    workspace.init()
    drops, summaries, daemon = _measure(workspace, files)
    latencies = list(_latencies(drops, summaries).values())
    elapsed = max(_published_at(path) for path in summaries.values()) - drops[0].dropped_at
    result.figures += _figures(count, latencies, elapsed)
    result.details["burst"] = {**_details(drops, latencies, _service_times(summaries), elapsed), **daemon}
    ctx.discard(workspace)


def _steady(ctx: BenchContext, result: CaseResult) -> None:
    count = _steady_count(ctx)
    files = _prepare_files(ctx, count, prefix="steady")
    workspace = ctx.workspace("small-files-steady", WARDBULK_STABILITY_WINDOW_S=str(STABILITY_WINDOW_S))
    workspace.init()
    drops, summaries, daemon = _measure(workspace, files, _drop_paced)
    latencies = list(_latencies(drops, summaries).values())
    elapsed = max(_published_at(path) for path in summaries.values()) - drops[0].dropped_at
    result.figures += _steady_figures(count, latencies)
    details = _details(drops, latencies, _service_times(summaries), elapsed)
    result.details["steady"] = {"files_per_s": STEADY_FILES_PER_S, **details, **daemon}
    ctx.discard(workspace)


def small_files(ctx: BenchContext) -> CaseResult:
    """Case 4: files/s and p50/p95 drop-to-summary latency of a burst of small files, and p50/p95/max
    latency of small files dropped at a steady 20 files/s."""
    result = CaseResult("small_files")
    _burst(ctx, result)
    _steady(ctx, result)
    return result

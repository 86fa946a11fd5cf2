"""Cases 1-3: SQLite import against ``sqlite3 .import``, peak memory of the import, assignment/discharge.

Each case function takes the ``BenchContext`` and returns a ``CaseResult``; a wrong outcome of any
measured process raises ``BenchFailure`` (see ``Workspace.process``).
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

from bench import datagen
from bench.context import BenchContext
from bench.measure import BenchFailure, ProcessRun, run_measured, run_module
from bench.results import TIMES, CaseResult, Figure
from bench.workspace import Processed, Workspace

IMPORT_SIZES = (100_000, 1_000_000)
MEMORY_SIZES = (200_000, 1_000_000, 5_000_000)
HOSPITAL_BEDS = 50_000
BEDS_PER_WARD = 100
MOVEMENTS = 50_000
IMPORT_RATIO_TARGET = 0.10  # of sqlite3 .import into a bare table (issue 16)
CEILING_RATIO_TARGET = 0.5  # of the schema's own write ceiling (bench/write_ceiling.py, issue 16)
MEMORY_LIMIT_MB = 250.0
MEMORY_GROWTH_LIMIT = 1.25
MOVEMENT_TARGET = 50_000.0
SQLITE_CLI = "/usr/bin/sqlite3"


def _sqlite(database: Path, *commands: str, log: Path) -> ProcessRun:
    return run_measured([SQLITE_CLI, database, *commands], log)


def raw_sqlite_import(folder: Path, file: Path, rows: int) -> ProcessRun:
    """Time ``sqlite3 DB .import`` of ``file`` into a bare all-TEXT table of a fresh database in ``folder``.

    The table is created first (not timed); the import is one whole process. ``BenchFailure`` unless the
    table then holds exactly ``rows`` rows.
    """
    database = folder / "raw.sqlite3"
    database.unlink(missing_ok=True)
    columns = ", ".join(f"{name} TEXT" for name in datagen.IMPORT_PATIENTS_HEADER)
    _sqlite(database, f"CREATE TABLE bare ({columns})", log=folder / "logs" / "raw-create.log").check()
    run = _sqlite(
        database, ".mode csv", f'.import --skip 1 "{file}" bare', log=folder / "logs" / "raw-import.log"
    ).check()
    counted = subprocess.run(
        [SQLITE_CLI, database, "SELECT count(*) FROM bare"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if counted != str(rows):
        raise BenchFailure(f"sqlite3 .import loaded {counted} rows of {rows} (log {run.log})")
    database.unlink()
    return run


def write_ceiling(ctx: BenchContext, file: Path, rows: int, database_url: str = "") -> ProcessRun:
    """Time ``python -m bench.write_ceiling`` of ``file`` into a freshly initialised wardbulk schema (the
    init untimed): the same rows, tables, transaction and durability as the import, nothing else.
    ``BenchFailure`` unless it wrote exactly ``rows`` patients."""
    workspace = ctx.workspace(f"ceiling-{rows}", database_url)
    workspace.init()
    log = workspace.logs / "write-ceiling.log"
    run, output = run_module("bench.write_ceiling", [workspace.database_url, file], log)
    if output.strip() != str(rows):
        raise BenchFailure(f"the write ceiling wrote {output.strip()} patients of {rows} (log {log})")
    ctx.discard(workspace)
    return run


def ceiling_figure(case: str, name: str, processed: Processed, ceiling: ProcessRun, rows: int) -> Figure:
    """wardbulk's rows/s against the schema's write ceiling, with the issue's target."""
    ceiling_speed = rows / ceiling.wall_s
    ratio = processed.rows_per_s / ceiling_speed
    target = f"≥ {CEILING_RATIO_TARGET}{TIMES} the schema's write ceiling"
    return Figure(
        case,
        name,
        processed.rows_per_s,
        "rows/s",
        target,
        ratio >= CEILING_RATIO_TARGET,
        ceiling_speed,
        ratio,
    )


def import_in_fresh_workspace(ctx: BenchContext, rows: int) -> Processed:
    """``wardbulk process`` of the ``rows``-patient file into a fresh SQLite workspace (reused if done)."""
    key = ("import_sqlite", rows)
    if key not in ctx.memo:
        workspace = ctx.workspace(f"import-sqlite-{rows}")
        workspace.init()
        ctx.memo[key] = workspace.process(ctx.patients_file(rows), "import_patients", rows)
        ctx.discard(workspace)
    processed: Processed = ctx.memo[key]
    return processed


def _run_details(processed: Processed) -> dict[str, Any]:
    return {
        "wall_s": round(processed.run.wall_s, 4),
        "peak_rss_mb": round(processed.run.peak_rss_mb, 1),
        "rows_per_s": round(processed.rows_per_s, 1),
        "summary_duration_s": processed.summary.get("duration_s"),
    }


def import_sqlite(ctx: BenchContext) -> CaseResult:
    """Case 1: import_patients rows/s of ``wardbulk process`` against ``sqlite3 .import`` of the same file."""
    result = CaseResult("import_sqlite")
    for full_size in IMPORT_SIZES:
        rows = ctx.rows(full_size)
        file = ctx.patients_file(rows)
        raw_folder = ctx.workdir / "cases" / f"raw-sqlite-{rows}"
        raw = raw_sqlite_import(raw_folder, file, rows)
        processed = import_in_fresh_workspace(ctx, rows)
        ceiling = write_ceiling(ctx, file, rows)
        raw_speed = rows / raw.wall_s
        ratio = processed.rows_per_s / raw_speed
        name = f"import_patients {rows:,} rows, against the write ceiling"
        result.figures.append(ceiling_figure(result.case, name, processed, ceiling, rows))
        result.figures.append(
            Figure(
                result.case,
                f"import_patients {rows:,} rows",
                processed.rows_per_s,
                "rows/s",
                f"≥ {IMPORT_RATIO_TARGET}{TIMES} raw .import",
                ratio >= IMPORT_RATIO_TARGET,
                raw_speed,
                ratio,
            )
        )
        result.details[str(rows)] = {
            "file_bytes": file.stat().st_size,
            "wardbulk": _run_details(processed),
            "raw_sqlite_import": {
                "wall_s": round(raw.wall_s, 4),
                "peak_rss_mb": round(raw.peak_rss_mb, 1),
                "rows_per_s": round(raw_speed, 1),
            },
            "ratio": round(ratio, 4),
            "write_ceiling": {
                "wall_s": round(ceiling.wall_s, 4),
                "peak_rss_mb": round(ceiling.peak_rss_mb, 1),
                "rows_per_s": round(rows / ceiling.wall_s, 1),
            },
            "ceiling_ratio": round(processed.rows_per_s * ceiling.wall_s / rows, 4),
        }
    return result


def memory(ctx: BenchContext) -> CaseResult:
    """Case 2: peak RSS of ``wardbulk process`` import_patients at 200k, 1M and 5M rows."""
    result = CaseResult("memory")
    small, middle, large = (ctx.rows(size) for size in MEMORY_SIZES)
    peaks = {}
    for rows in (small, middle, large):
        processed = import_in_fresh_workspace(ctx, rows)
        peaks[rows] = processed.run.peak_rss_mb
        result.details[str(rows)] = _run_details(processed)
    growth = peaks[large] / peaks[middle]
    growth_limit = MEMORY_GROWTH_LIMIT * peaks[middle]
    result.figures += [
        Figure(result.case, f"peak RSS, import {small:,} rows", peaks[small], "MB"),
        Figure(
            result.case,
            f"peak RSS, import {middle:,} rows",
            peaks[middle],
            "MB",
            f"≤ {MEMORY_LIMIT_MB:.0f} MB",
            peaks[middle] <= MEMORY_LIMIT_MB,
        ),
        Figure(
            result.case,
            f"peak RSS, import {large:,} rows",
            peaks[large],
            "MB",
            f"≤ {MEMORY_GROWTH_LIMIT}{TIMES} the {middle:,} figure ({growth_limit:.1f} MB)",
            growth <= MEMORY_GROWTH_LIMIT,
            ratio=growth,
        ),
    ]
    return result


def hospital_shape(beds: int) -> tuple[int, int]:
    """(wards, beds per ward) of a hospital of at least ``beds`` beds, ``BEDS_PER_WARD`` a ward."""
    if beds <= BEDS_PER_WARD:
        return 1, beds
    return math.ceil(beds / BEDS_PER_WARD), BEDS_PER_WARD


def _setup_hospital(
    ctx: BenchContext, workspace: Workspace, shape: tuple[int, int], patients: int
) -> tuple[Processed, dict[str, Any]]:
    """sync_beds of a hospital of ``shape`` (wards, beds per ward), import_patients of ``patients``:
    the sync_beds run, and the details of the set-up."""
    wards, per_ward = shape
    beds = ctx.generated(
        f"sync-beds-{wards}x{per_ward}.csv", lambda path: datagen.write_sync_beds(path, wards, per_ward)
    )
    workspace.init()
    synced = workspace.process(beds, "sync_beds", wards * per_ward)
    imported = workspace.process(ctx.patients_file(patients), "import_patients", patients)
    return synced, {
        "wards": wards,
        "beds": wards * per_ward,
        "import_patients": _run_details(imported),
    }


def _movement_figure(processed: Processed, name: str) -> Figure:
    return Figure(
        "assignment",
        name,
        processed.rows_per_s,
        "rows/s",
        f"≥ {MOVEMENT_TARGET:,.0f} rows/s",
        processed.rows_per_s >= MOVEMENT_TARGET,
    )


def _in_process_figures(processed: Processed, operation: str) -> list[Figure]:
    """For context, no target: rows/s over the summary's ``duration_s`` (the pipeline's own time, without
    process start-up, which at this size is most of the wall time)."""
    duration = processed.summary.get("duration_s") or 0.0
    if duration <= 0:
        return []
    rows = processed.summary["successful_records"]
    return [Figure("assignment", f"{operation}, time in summary.json", rows / duration, "rows/s")]


def assignment(ctx: BenchContext) -> CaseResult:
    """Case 3, the ward operations: sync_beds of the hospital, then bulk_assignment, transfer_patients
    and bulk_discharge of the same patients, each to a distinct bed (a transfer to a bed of the half the
    assignment left free).

    The hospital's import_patients (set-up) is reported in the details only.
    """
    result = CaseResult("assignment")
    patients = ctx.rows(MOVEMENTS)
    beds = max(ctx.rows(HOSPITAL_BEDS), 2 * patients)
    wards, per_ward = hospital_shape(beds)
    workspace = ctx.workspace("assignment")
    synced, result.details["setup"] = _setup_hospital(ctx, workspace, (wards, per_ward), patients)
    admit = ctx.generated(
        f"assign-{patients}.csv",
        lambda path: datagen.write_assignments(path, patients, wards, per_ward, ctx.seed),
    )
    move = ctx.generated(
        f"transfer-{patients}.csv",
        lambda path: datagen.write_transfers(path, patients, wards, per_ward, ctx.seed),
    )
    leave = ctx.generated(
        f"discharge-{patients}.csv", lambda path: datagen.write_discharges(path, patients, ctx.seed)
    )
    processed = {
        "sync_beds": synced,
        "bulk_assignment": workspace.process(admit, "bulk_assignment", patients),
        "transfer_patients": workspace.process(move, "transfer_patients", patients),
        "bulk_discharge": workspace.process(leave, "bulk_discharge", patients),
    }
    for operation, run in processed.items():
        rows = run.summary["successful_records"]
        result.figures.append(_movement_figure(run, f"{operation} {rows:,} rows"))
    for operation, run in processed.items():
        result.figures += _in_process_figures(run, operation)
        result.details[operation] = _run_details(run)
    ctx.discard(workspace)
    return result

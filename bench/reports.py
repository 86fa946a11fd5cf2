"""Case 5: each report over a seeded history (100k patients, 1M admissions, 10k beds at scale 1).

The database is seeded directly (``bench.seed_history``), then each report is timed in-process
(``bench.report_timing``: best of 3 after a warm-up), which gives the figures; the whole-process wall
time of ``wardbulk report TYPE -o FILE`` is measured once per type as a detail. Every timing is checked
against the row count the seeder says the report must have.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.cases import hospital_shape
from bench.context import BenchContext
from bench.measure import BenchFailure, run_module
from bench.results import CaseResult, Figure
from bench.workspace import Workspace

PATIENTS = 100_000
ADMISSIONS = 1_000_000
BEDS = 10_000
PERIOD_DAYS = 30
REPORT_TYPES = ("occupancy", "patient_list", "admission_discharge", "bed_utilization", "export_patients")
PERIOD_TYPES = ("admission_discharge", "bed_utilization")
REPORT_TARGET_S = 1.0
OCCUPANCY_TARGET_S = 0.05


def _period() -> tuple[str, str]:
    """The last ``PERIOD_DAYS`` UTC days, today included, as ISO dates."""
    today = datetime.now(UTC).date()
    return (today - timedelta(days=PERIOD_DAYS - 1)).isoformat(), today.isoformat()


def _seed(ctx: BenchContext, workspace: Workspace, period: tuple[str, str]) -> dict[str, Any]:
    wards, per_ward = hospital_shape(ctx.rows(BEDS))
    args = [
        "--database-url",
        workspace.database_url,
        "--patients",
        str(ctx.rows(PATIENTS)),
        "--admissions",
        str(ctx.rows(ADMISSIONS)),
        "--wards",
        str(wards),
        "--beds-per-ward",
        str(per_ward),
        "--seed",
        str(ctx.seed),
        "--period-start",
        period[0],
        "--period-end",
        period[1],
    ]
    run, output = run_module("bench.seed_history", args, workspace.logs / "seed.log")
    seeded: dict[str, Any] = json.loads(output)
    seeded["seed_wall_s"] = round(run.wall_s, 2)
    return seeded


def _time_in_process(workspace: Workspace, period: tuple[str, str]) -> dict[str, Any]:
    args = [
        "--database-url",
        workspace.database_url,
        "--outbox",
        str(workspace.outbox),
        "--output-dir",
        str(workspace.root / "timed"),
        "--from",
        period[0],
        "--to",
        period[1],
    ]
    _, output = run_module("bench.report_timing", args, workspace.logs / "report-timing.log", workspace.env())
    timings: dict[str, Any] = json.loads(output)
    return timings


def _data_rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def _whole_process(workspace: Workspace, report_type: str, period: tuple[str, str], expected: int) -> float:
    """Wall time of ``wardbulk report TYPE -o FILE``; ``BenchFailure`` unless it wrote ``expected`` rows."""
    output = workspace.root / "cli" / f"{report_type}.csv"
    output.parent.mkdir(parents=True, exist_ok=True)
    period_args = ["--from", period[0], "--to", period[1]] if report_type in PERIOD_TYPES else []
    run = workspace.wardbulk(f"report-{report_type}", "report", report_type, *period_args, "-o", output)
    if (rows := _data_rows(output)) != expected:
        raise BenchFailure(f"wardbulk report {report_type} wrote {rows} rows, expected {expected}")
    return run.wall_s


def _figure(report_type: str, best_s: float) -> Figure:
    if report_type == "occupancy":
        limit = OCCUPANCY_TARGET_S
        return Figure(
            "reports", "occupancy", best_s * 1000, "ms", f"≤ {limit * 1000:.0f} ms", best_s <= limit
        )
    return Figure(
        "reports", report_type, best_s, "s", f"≤ {REPORT_TARGET_S:.0f} s", best_s <= REPORT_TARGET_S
    )


def reports(ctx: BenchContext) -> CaseResult:
    """Case 5: in-process time of each report (best of 3), checked row counts, whole-process times."""
    result = CaseResult("reports")
    period = _period()
    workspace = ctx.workspace("reports")
    workspace.init()
    seeded = _seed(ctx, workspace, period)
    timings = _time_in_process(workspace, period)
    result.details = {"seeded": seeded, "period": list(period), "reports": {}}
    for report_type in REPORT_TYPES:
        timing, expected = timings[report_type], seeded["expected_rows"][report_type]
        if timing["rows"] != expected:
            raise BenchFailure(f"report {report_type} has {timing['rows']} rows, expected {expected}")
        timing["wardbulk_report_wall_s"] = _whole_process(workspace, report_type, period, expected)
        result.details["reports"][report_type] = timing
        result.figures.append(_figure(report_type, timing["best_s"]))
    ctx.discard(workspace)
    return result

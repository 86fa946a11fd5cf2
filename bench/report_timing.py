"""``python -m bench.report_timing``: time each report in-process with the project's own functions.

For each report type: one warm-up, then ``--repeat`` timed calls of ``run_report`` (what
``wardbulk report TYPE -o FILE`` does after start-up: register the operation, run the queries, write the
CSV atomically, complete the operation) and as many of ``build_report`` alone (the queries and row
shaping). The period filters apply to admission_discharge and bed_utilization only. Prints one JSON
object: per type, the best and every time of each, and the row count.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from processor.adapters.database.engine import build_engine
from processor.adapters.owners import this_process
from processor.core.clock import system_clock
from processor.core.report_request import ReportRequest, ReportType
from processor.reports.queries import build_report
from processor.reports.service import run_report

PERIOD_TYPES = (ReportType.ADMISSION_DISCHARGE, ReportType.BED_UTILIZATION)


def _timed(work: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """One untimed warm-up call, then ``repeat`` timed calls; the times and the last call's value."""
    value = work()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        value = work()
        times.append(time.perf_counter() - started)
    return times, value


def time_report(args: argparse.Namespace, report_type: ReportType) -> dict[str, Any]:
    """The timings of one report type."""
    engine = build_engine(args.database_url)
    period = (args.start, args.end) if report_type in PERIOD_TYPES else (None, None)
    request = ReportRequest(report_type, None, *period)
    output = args.output_dir / f"{report_type.value}.csv"

    def write() -> Any:
        return run_report(
            engine, args.outbox, system_clock, request, "bench", this_process(), "bench", str(output)
        )

    def build() -> Any:
        with engine.connect() as connection:
            return build_report(connection, request, system_clock())

    written, outcome = _timed(write, args.repeat)
    built, _ = _timed(build, args.repeat)
    engine.dispose()
    return {
        "best_s": round(min(written), 6),
        "times_s": [round(value, 6) for value in written],
        "rows": outcome.rows,
        "build_best_s": round(min(built), 6),
        "build_times_s": [round(value, 6) for value in built],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``--database-url URL --outbox DIR --output-dir DIR --from D --to D [--repeat N] [--only T,...]``."""
    parser = argparse.ArgumentParser(prog="python -m bench.report_timing")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="end", type=date.fromisoformat, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(t.value for t in ReportType))
    return parser.parse_args(argv)


def main() -> None:
    """Time the chosen report types and print the JSON."""
    args = parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    types = [ReportType(name) for name in args.only.split(",")]
    print(json.dumps({report_type.value: time_report(args, report_type) for report_type in types}))


if __name__ == "__main__":
    main()

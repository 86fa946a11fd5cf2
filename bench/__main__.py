"""``python -m bench``: run the benchmark cases, print the table, write results.json (and RESULTS.md).

Exit status: 0 when every case ran and met its targets, 1 when a target was missed, 2 when a case
failed (a measured process exited non-zero or did the wrong thing) or the command line was wrong.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench import cases, history, postgres, reports, small_files
from bench.context import DEFAULT_POSTGRES_URL, BenchContext
from bench.measure import BenchFailure
from bench.meta import run_metadata
from bench.results import CaseResult, markdown, print_table, write_json

BENCH_DIR = Path(__file__).resolve().parent
CASES: dict[str, Callable[[BenchContext], CaseResult]] = {
    "import_sqlite": cases.import_sqlite,
    "memory": cases.memory,
    "assignment": cases.assignment,
    "small_files": small_files.small_files,
    "reports": reports.reports,
    "import_postgres": postgres.import_postgres,
    "history": history.history,
}


def _case_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown case {', '.join(unknown)!s}; cases: {', '.join(CASES)}")
    return names


def _scale(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError("the scale must be > 0 and <= 10")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="wardbulk benchmark: each case beside its raw limit."
    )
    parser.add_argument("--scale", type=_scale, default=1.0, help="multiplies every row count (default 1.0)")
    parser.add_argument(
        "--only", type=_case_list, default=list(CASES), help="CASE[,CASE]: " + ", ".join(CASES)
    )
    parser.add_argument("--workdir", type=Path, help="work folder (default: a fresh bench/.work/run-<time>)")
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES_URL, help="server for import_postgres and history"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="do not write bench/RESULTS.md and results.json"
    )
    parser.add_argument("--keep", action="store_true", help="keep generated files and case databases")
    return parser.parse_args(argv)


def run_case(name: str, ctx: BenchContext, console: Console) -> CaseResult:
    """Run one case; a failure becomes a result with an error (with its traceback), never an exception."""
    console.print(f"[bold]{name}[/bold] …")
    started = time.perf_counter()
    try:
        result = CASES[name](ctx)
    except Exception as exc:
        detail = "" if isinstance(exc, BenchFailure) else "\n" + traceback.format_exc()
        result = CaseResult(name, error=f"{type(exc).__name__}: {exc}{detail}")
        console.print(f"[red]{name} failed:[/red] {result.error}")
    result.elapsed_s = round(time.perf_counter() - started, 2)
    console.print(f"{name} done in {result.elapsed_s:.1f} s")
    return result


def _write_outputs(
    args: argparse.Namespace, ctx: BenchContext, meta: dict[str, object], results: list[CaseResult]
) -> list[Path]:
    """results.json and RESULTS.md in the workdir, and in bench/ for a full-scale run without --no-write."""
    folders = [ctx.workdir]
    if args.scale == 1.0 and not args.no_write:
        folders.append(BENCH_DIR)
    written = []
    for folder in folders:
        write_json(folder / "results.json", meta, results)
        (folder / "RESULTS.md").write_text(markdown(meta, results), encoding="utf-8")
        written += [folder / "results.json", folder / "RESULTS.md"]
    return written


def _default_workdir() -> Path:
    return BENCH_DIR / ".work" / f"run-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def main(argv: list[str] | None = None) -> int:
    """Run the chosen cases and report; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    workdir = (args.workdir or _default_workdir()).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = BenchContext(args.scale, workdir, args.postgres_url, args.keep)
    command = shlex.join(["python", "-m", "bench", *argv])
    meta = run_metadata(command, args.scale, args.only)
    console = Console()
    if not console.is_terminal:  # piped or captured: Rich would wrap the table at 80 columns
        console = Console(width=160)
    console.print(f"wardbulk benchmark at {meta['commit']}, scale {args.scale}, work folder {workdir}")
    results = [run_case(name, ctx, console) for name in args.only]
    print_table(console, results, f"wardbulk benchmark (scale {args.scale}, {meta['nproc']} cores)")
    for path in _write_outputs(args, ctx, meta, results):
        console.print(f"wrote {path}")
    if not args.keep:
        shutil.rmtree(workdir / "data", ignore_errors=True)
    if any(result.error for result in results):
        return 2
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())

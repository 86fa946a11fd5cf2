"""``python -m bench.profile``: where one ``wardbulk process`` spends its time, phase by phase.

Runs ``wardbulk process`` of a generated file under cProfile in a fresh workspace (SQLite, or a fresh
PostgreSQL database with ``--postgres-url``), then prints how its time splits: start-up, phase 1 (reading
and checking, result files), phase 2 (the transaction) and the database's own share of each, and the
functions with the most time of their own. The set-up (``init``, and for the ward operations the beds and
patients they need) is not profiled. cProfile slows Python code down (about 1.5x), not the database's:
read the split as proportions of a profiled run, and the benchmark for speeds.

    python -m bench.profile                                  # import_patients, 100,000 rows, SQLite
    python -m bench.profile --operation bulk_assignment --rows 50000
    python -m bench.profile --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python -m bench.profile --save /tmp/import.prof           # keep the raw profile for pstats/snakeviz
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bench import datagen
from bench.postgres import libpq
from bench.workspace import Workspace

OPERATIONS = ("import_patients", "bulk_assignment", "bulk_discharge")
PROFILE_DATABASE = "wardbulk_bench_profile"
BEDS_PER_WARD = 100
# (label, how a function is known: the end of its file name and its name), the parts of a run.
PHASES = (
    ("phase 1: read, check, write result files", "pipeline/validation.py", "validate_to_spool"),
    ("  the operation's checks (run.validate)", "rules.py", "validate"),
    ("  result.csv rows", "adapters/outbox.py", "write_rows"),
    ("  the spool", "pipeline/spool.py", "spool_chunk"),
    ("phase 2: apply in the file's transaction", "rules.py", "apply"),
)
# The database's own time: the drivers' calls that wait for SQLite or for the PostgreSQL server.
DATABASE_CALLS = (
    ("~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("~", "<method 'executemany' of 'sqlite3.Cursor' objects>"),
    ("~", "<method 'execute' of 'sqlite3.Connection' objects>"),
    ("~", "<method 'executemany' of 'sqlite3.Connection' objects>"),
    ("~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("psycopg/connection.py", "wait"),
)


def _cumulative(stats: pstats.Stats, file_end: str, name: str) -> float:
    """Cumulative seconds of the functions called ``name`` in files ending with ``file_end`` (the
    outermost call only: recursion is not counted twice)."""
    table = stats.stats  # type: ignore[attr-defined]
    return sum(
        row[3] for (file, _, function), row in table.items() if file.endswith(file_end) and function == name
    )


def _own(stats: pstats.Stats, calls: tuple[tuple[str, str], ...]) -> float:
    table = stats.stats  # type: ignore[attr-defined]
    return sum(
        row[2]
        for (file, _, function), row in table.items()
        if any(file.endswith(end) and function == name for end, name in calls)
    )


def report(profile: Path, top: int) -> str:
    """The phase split and the ``top`` functions by own time, as text."""
    stats = pstats.Stats(str(profile))
    total = stats.total_tt  # type: ignore[attr-defined]
    handled = _cumulative(stats, "pipeline/handler.py", "process_claimed")
    lines = [
        f"profiled wall time {total:.2f} s",
        f"{'start-up and after the file':<45} {total - handled:7.2f} s",
    ]
    lines += [f"{label:<45} {_cumulative(stats, end, name):7.2f} s" for label, end, name in PHASES]
    lines.append(f"{'the database drivers own time (both phases)':<45} {_own(stats, DATABASE_CALLS):7.2f} s")
    lines.append(f"\nthe {top} functions with the most time of their own:")
    table = stats.stats  # type: ignore[attr-defined]
    ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (file, line, function), row in ranked:
        where = f"{Path(file).name}:{line}" if file != "~" else ""
        lines.append(f"  {row[2]:7.2f} s own {row[3]:7.2f} s cum {row[1]:>9} calls  {where} {function}")
    return "\n".join(lines)


def _prepare(workspace: Workspace, folder: Path, operation: str, rows: int) -> Path:
    """Init the workspace and make the file to profile (with, for the ward operations, the beds and
    patients it needs, applied unprofiled)."""
    workspace.init()
    if operation == "import_patients":
        file = folder / "import_patients.csv"
        datagen.write_import_patients(file, rows)
        return file
    wards = max(1, rows // BEDS_PER_WARD)
    beds, patients = folder / "beds.csv", folder / "patients.csv"
    datagen.write_sync_beds(beds, wards, BEDS_PER_WARD)
    datagen.write_import_patients(patients, rows)
    workspace.process(beds, "sync_beds", wards * BEDS_PER_WARD)
    workspace.process(patients, "import_patients", rows)
    assignments = folder / "bulk_assignment.csv"
    datagen.write_assignments(assignments, rows, wards, BEDS_PER_WARD)
    if operation == "bulk_assignment":
        return assignments
    workspace.process(assignments, "bulk_assignment", rows)
    file = folder / "bulk_discharge.csv"
    datagen.write_discharges(file, rows)
    return file


@contextmanager
def _database(postgres_url: str | None) -> Iterator[str]:
    """The database URL to profile on: none (the workspace's SQLite file), or a fresh PostgreSQL one."""
    if postgres_url is None:
        yield ""
        return
    server = make_url(postgres_url)
    with psycopg.connect(libpq(server), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{PROFILE_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{PROFILE_DATABASE}"')
        try:
            yield server.set(database=PROFILE_DATABASE).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{PROFILE_DATABASE}" WITH (FORCE)')


def profile(operation: str, rows: int, postgres_url: str | None, top: int, save: Path | None = None) -> str:
    """Profile ``wardbulk process`` of ``rows`` rows of ``operation``; the report (see ``report``).
    With ``save``, the raw cProfile output is copied there."""
    with tempfile.TemporaryDirectory(prefix="wardbulk-profile-") as name, _database(postgres_url) as url:
        folder = Path(name)
        workspace = Workspace(folder / "workspace", url)
        file = _prepare(workspace, folder, operation, rows)
        output = folder / "process.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(output), "-m", "processor"]
        command += ["process", str(file), "--operation", operation]
        done = subprocess.run(
            command, env=workspace.env(), cwd=workspace.root, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"wardbulk process failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
        if save is not None:
            shutil.copyfile(output, save)
        summary = workspace.latest_summary(operation, file.stem)
        head = f"{operation}, {summary['successful_records']:,} of {rows:,} rows applied"
        head += " on PostgreSQL\n" if url else " on SQLite\n"
        floor = _one_row_wall_s(folder / "floor")
        head += f"unprofiled, a one-row file on SQLite takes {floor:.2f} s (start-up and per-file work)\n"
        return head + report(output, top)


def _one_row_wall_s(folder: Path) -> float:
    """The wall time of ``wardbulk process`` of a one-row file in a fresh SQLite workspace, unprofiled:
    the floor every process pays (cProfile inflates imports several times over)."""
    workspace = Workspace(folder / "workspace")
    workspace.init()
    file = folder / "one_row.csv"
    datagen.write_import_patients(file, 1)
    return workspace.process(file, "import_patients", 1).run.wall_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--operation", choices=OPERATIONS, default="import_patients")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres-url", default=None, help="profile on a fresh database of this server")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--save", type=Path, default=None, help="keep the raw cProfile output in this file")
    args = parser.parse_args(argv)
    print(profile(args.operation, args.rows, args.postgres_url, args.top, args.save))


if __name__ == "__main__":
    main()

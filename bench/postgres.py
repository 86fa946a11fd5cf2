"""Case 6: the import on PostgreSQL, against psycopg's ``COPY`` of the same file into a bare table.

The bench creates its own databases on the server (``wardbulk_bench`` for wardbulk, ``wardbulk_bench_raw``
for the bare table), dropping any left over first, and drops them afterwards (unless ``--keep``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import URL, make_url

from bench.context import BenchContext
from bench.datagen import IMPORT_PATIENTS_HEADER
from bench.measure import BenchFailure, ProcessRun, run_module
from bench.results import TIMES, CaseResult, Figure
from bench.workspace import Processed

ROWS = 1_000_000
RATIO_TARGET = 0.25
WARDBULK_DATABASE = "wardbulk_bench"
RAW_DATABASE = "wardbulk_bench_raw"


def libpq(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy URL (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def bench_databases(server: URL, keep: bool) -> Iterator[dict[str, URL]]:
    """Fresh, empty bench databases on ``server``, by name; dropped on the way out unless ``keep``."""
    names = (WARDBULK_DATABASE, RAW_DATABASE)
    with psycopg.connect(libpq(server), autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield {name: server.set(database=name) for name in names}
        finally:
            for name in names if not keep else ():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _count(conninfo: str) -> int:
    with psycopg.connect(conninfo) as connection:
        row = connection.execute("SELECT count(*) FROM bare").fetchone()
    return int(row[0]) if row else -1


def raw_copy(ctx: BenchContext, database: URL, rows: int) -> ProcessRun:
    """Time ``python -m bench.raw_copy`` of the ``rows``-patient file into a bare all-TEXT table."""
    conninfo = libpq(database)
    columns = ", ".join(f"{name} text" for name in IMPORT_PATIENTS_HEADER)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE bare ({columns})")
    log = ctx.workdir / "cases" / "raw-postgres" / "raw-copy.log"
    run, output = run_module("bench.raw_copy", [conninfo, ctx.patients_file(rows)], log)
    if output.strip() != str(rows) or _count(conninfo) != rows:
        raise BenchFailure(f"COPY loaded {output.strip()} rows ({_count(conninfo)} counted) of {rows}")
    return run


def _server_version(server: URL) -> str:
    with psycopg.connect(libpq(server)) as connection:
        return str(connection.info.server_version)


def _import(ctx: BenchContext, database: URL, rows: int) -> Processed:
    workspace = ctx.workspace("import-postgres", database.render_as_string(hide_password=False))
    workspace.init()
    processed = workspace.process(ctx.patients_file(rows), "import_patients", rows)
    ctx.discard(workspace)
    return processed


def import_postgres(ctx: BenchContext) -> CaseResult:
    """Case 6: rows/s of ``wardbulk process`` on PostgreSQL against raw COPY, and their ratio."""
    rows = ctx.rows(ROWS)
    server = make_url(ctx.postgres_url)
    with bench_databases(server, ctx.keep) as databases:
        raw = raw_copy(ctx, databases[RAW_DATABASE], rows)
        processed = _import(ctx, databases[WARDBULK_DATABASE], rows)
    raw_speed = rows / raw.wall_s
    ratio = processed.rows_per_s / raw_speed
    figure = Figure(
        "import_postgres",
        f"import_patients {rows:,} rows, PostgreSQL",
        processed.rows_per_s,
        "rows/s",
        f"≥ {RATIO_TARGET}{TIMES} raw COPY",
        ratio >= RATIO_TARGET,
        raw_speed,
        ratio,
    )
    details = {
        "server_version": _server_version(server),
        "wardbulk": {
            "wall_s": round(processed.run.wall_s, 4),
            "peak_rss_mb": round(processed.run.peak_rss_mb, 1),
            "summary_duration_s": processed.summary.get("duration_s"),
        },
        "raw_copy": {"wall_s": round(raw.wall_s, 4), "peak_rss_mb": round(raw.peak_rss_mb, 1)},
        "ratio": round(ratio, 4),
    }
    return CaseResult("import_postgres", [figure], details)

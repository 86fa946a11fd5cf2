"""Case 6: the import on PostgreSQL, against psycopg's ``COPY`` of the same file into a bare table.

The bench creates its own databases on the server (``wardbulk_bench`` for wardbulk, ``wardbulk_bench_raw``
for the bare table), dropping any left over first, and drops them afterwards (unless ``--keep``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import URL, make_url

from bench.cases import ceiling_figure, write_ceiling
from bench.context import BenchContext
from bench.datagen import IMPORT_PATIENTS_HEADER
from bench.measure import BenchFailure, ProcessRun, run_module
from bench.results import CaseResult, Figure
from bench.workspace import Processed

ROWS = 1_000_000
WARDBULK_DATABASE = "wardbulk_bench"
RAW_DATABASE = "wardbulk_bench_raw"
CEILING_DATABASE = "wardbulk_bench_ceiling"  # the schema's write ceiling: binary COPY (issue 16)


def libpq(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy URL (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def bench_databases(server: URL, keep: bool) -> Iterator[dict[str, URL]]:
    """Fresh, empty bench databases on ``server``, by name; dropped on the way out unless ``keep``."""
    names = (WARDBULK_DATABASE, RAW_DATABASE, CEILING_DATABASE)
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
        ceiling_url = databases[CEILING_DATABASE].render_as_string(hide_password=False)
        ceiling = write_ceiling(ctx, ctx.patients_file(rows), rows, ceiling_url)
    raw_speed = rows / raw.wall_s
    ratio = processed.rows_per_s / raw_speed
    # Context: a text COPY into a bare table (issue 16 sets the target against the schema's ceiling).
    figure = Figure(
        "import_postgres",
        f"import_patients {rows:,} rows, PostgreSQL, against raw COPY into a bare table",
        processed.rows_per_s,
        "rows/s",
        "",
        None,
        raw_speed,
        ratio,
    )
    name = f"import_patients {rows:,} rows, PostgreSQL, against binary COPY into the schema"
    against_ceiling = ceiling_figure("import_postgres", name, processed, ceiling, rows)
    details = {
        "server_version": _server_version(server),
        "write_ceiling": {"wall_s": round(ceiling.wall_s, 4), "peak_rss_mb": round(ceiling.peak_rss_mb, 1)},
        "ceiling_ratio": round(against_ceiling.ratio or 0.0, 4),
        "wardbulk": {
            "wall_s": round(processed.run.wall_s, 4),
            "peak_rss_mb": round(processed.run.peak_rss_mb, 1),
            "summary_duration_s": processed.summary.get("duration_s"),
        },
        "raw_copy": {"wall_s": round(raw.wall_s, 4), "peak_rss_mb": round(raw.peak_rss_mb, 1)},
        "ratio": round(ratio, 4),
    }
    return CaseResult("import_postgres", [against_ceiling, figure], details)

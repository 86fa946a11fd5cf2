"""Case 7 (issue 13, "a year of files must not slow the daemon"): wardbulk over a year of operations.

A busy feed makes about 5 million ``BulkOperation`` rows a year. For each size (1M and 5M operations on
SQLite, 1M on PostgreSQL, times the scale) a workspace is initialised (``wardbulk init``) and its
database seeded directly with that history (``python -m bench.history seed``, below); then, each as a
whole process through the launcher, best of ``REPEAT``:

- ``wardbulk ops stats --json`` (checked: exactly the seeded operations, completed, failed, in progress
  and record sums), ``wardbulk ops list`` (default limit), ``wardbulk ops list --before <the middle id>``
  and ``wardbulk ops show <the middle id>`` (their output checked too);
- the dashboard build: ``python -m bench.history dashboard``, a process that runs
  ``processor.reports.dashboard.refresh_dashboard(engine, outbox, now)`` once;
- the per-file cost of small files: ``bench.small_files``'s burst into a running ``wardbulk run``, into
  the seeded database and into a fresh one, alternating, new files each round: files/s and p95 latency
  of both, and their ratio. Then ``ops stats`` and the dashboard over the fresh database (its few burst
  operations): the start-up floor those figures stand beside.

The seeded history (``seed``): 4 users, then operations 1..N created one after another over the last
``HISTORY_DAYS`` days (ids grow with creation time, as wardbulk's do); a feed's mix of types (reports are
``export_report``/``export_patients`` operations without bytes); 3% failed (nothing applied, an error
code and message, the claim released), 5% of the others with rejected rows; durations log-normal around
0.3 s; a SHA-256 per file and its ``file_claims`` row while it holds one; outputs marked purged after
the outbox retention when the schema has ``outputs_purged_at``. It goes in through the project's engine
(SQLite: foreign keys on) in batches of ``bench.seed_history.BATCH``, by the driver (``executemany``;
PostgreSQL ``COPY``) with the values already in their stored form (``TimeText``), the secondary indexes
dropped first and created again from their own DDL at the end (a sort each instead of millions of random
inserts). PostgreSQL is then vacuumed and analysed, as autovacuum would have done over the year.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, insert, text
from sqlalchemy.engine import make_url

from bench import datagen, small_files
from bench.context import BenchContext
from bench.measure import BenchFailure, ProcessRun, best_of, percentile, run_measured, run_module
from bench.postgres import libpq
from bench.results import TIMES, CaseResult, Figure
from bench.seed_history import BATCH, _table
from bench.workspace import Workspace, wardbulk_command
from processor.adapters.database.engine import build_engine
from processor.adapters.database.models import BulkOperation, FileClaim, User

HISTORY_DAYS = 365
OUTBOX_RETENTION_DAYS = 30
FAILED_SHARE = 0.03
PARTLY_REJECTED_SHARE = 0.05
HOST = "wardbulk-01:4242:1700000000:4026531836"
FEED_USERS = ("wardfeed", "pharmacy-sync", "root", "nurse.station")
# A busy feed's day: movements dominate; reports are operations too (scheduled and requested).
TYPE_WEIGHTS = {
    "sync_beds": 1,
    "import_patients": 20,
    "bulk_assignment": 25,
    "transfer_patients": 12,
    "bulk_discharge": 25,
    "export_report": 12,
    "export_patients": 5,
}
REPORT_TYPES = ("export_report", "export_patients")
ERRORS = (
    ("missing_columns", "the header lacks required columns: ward"),
    ("unknown_bed", "row 2: bed W012-B031 is not known"),
    ("duplicate_file", "these bytes were already applied by an earlier operation"),
    ("database_busy", "the database stayed locked; the file will be retried"),
)
SEEDED_TABLES = (User, BulkOperation, FileClaim)


@dataclass
class HistoryTally:
    """What the seeder wrote: what ``ops stats`` must report, and the rows beside the operations."""

    operations: int = 0
    completed: int = 0
    failed: int = 0
    in_progress: int = 0
    records: int = 0
    successful_records: int = 0
    file_claims: int = 0
    users: int = 0
    first_created_at: str = ""
    last_created_at: str = ""


OPERATION_COLUMNS = (
    "id",
    "operation_type",
    "status",
    "initiated_by_id",
    "created_at",
    "started_at",
    "completed_at",
    "heartbeat_at",
    "input_file",
    "output_file",
    "sha256",
    "host",
    "total_records",
    "processed_records",
    "successful_records",
    "failed_records",
    "error_code",
    "error_message",
)
PURGED_COLUMN = "outputs_purged_at"
CLAIM_COLUMNS = ("operation_type", "sha256", "operation_id", "claimed_at")
MICROSECONDS = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TimeText:
    """UTC times (integer microseconds since the epoch) as the text the database is given.

    SQLite: exactly what wardbulk's ``UtcDateTime`` stores (``YYYY-MM-DD HH:MM:SS.ffffff``, no zone),
    checked against the column type's own bind processor before seeding (``check_against``).
    PostgreSQL: the same text with ``+00``, a ``timestamptz`` literal of the same instant.
    Formatted by hand, with the date of each day computed once: ``strftime`` per value would double the
    time it takes to seed millions of rows.
    """

    def __init__(self, suffix: str) -> None:
        self._suffix = suffix
        self._days: dict[int, str] = {}

    def __call__(self, microseconds: int) -> str:
        seconds, micro = divmod(microseconds, MICROSECONDS)
        day, second = divmod(seconds, 86_400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")
        hour, rest = divmod(second, 3600)
        minute, whole = divmod(rest, 60)
        return f"{prefix}{hour:02d}:{minute:02d}:{whole:02d}.{micro:06d}{self._suffix}"

    def check_against(self, connection: Connection) -> None:
        """SQLite: ``SystemExit`` unless this text is what the project's column type would store."""
        if connection.dialect.name != "sqlite":
            return
        dialect = connection.dialect
        process = _table(BulkOperation).c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        for sample in (datetime(2026, 3, 29, 1, 2, 3, 4, UTC), datetime(2025, 12, 31, 23, 59, 59, 0, UTC)):
            microseconds = (sample - EPOCH) // timedelta(microseconds=1)
            stored = process(sample) if process else sample
            if stored != self(microseconds):
                raise SystemExit(f"wardbulk stores {stored!r} where the seeder writes {self(microseconds)!r}")


def _duration_us(rng: random.Random) -> int:
    """How long a small file takes: log-normal, median ~0.3 s, a long tail (capped at an hour)."""
    return int(min(rng.lognormvariate(math.log(0.3), 1.0), 3600.0) * MICROSECONDS)


def _records(rng: random.Random, kind: str) -> int:
    if kind == "sync_beds":
        return rng.randrange(100, 5000)
    if kind in REPORT_TYPES:
        return rng.randrange(1, 2000)
    return 1 + int(rng.expovariate(1 / 40))


@dataclass(frozen=True)
class Plan:
    """The seeded history's shape: ``count`` operations between ``start_us`` and ``end_us``."""

    count: int
    start_us: int
    end_us: int
    purged_column: bool

    @property
    def step_us(self) -> float:
        return (self.end_us - self.start_us) / max(self.count, 1)


def operation_rows(
    rng: random.Random, plan: Plan, when: TimeText
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...] | None]]:
    """Operations 1..count in ``OPERATION_COLUMNS`` order (``outputs_purged_at`` last when the table has
    it), oldest first, evenly spread; each with its ``file_claims`` row (``CLAIM_COLUMNS``), or None
    when it holds none (a report has no bytes; a failure released its claim)."""
    kinds = rng.choices(list(TYPE_WEIGHTS), list(TYPE_WEIGHTS.values()), k=min(plan.count, 100_000))
    retention_us = OUTBOX_RETENTION_DAYS * 86_400 * MICROSECONDS
    for index in range(plan.count):
        number = index + 1
        kind = kinds[index % len(kinds)]
        created_us = plan.start_us + int(plan.step_us * (index + 0.9 * rng.random()))
        completed_us = created_us + _duration_us(rng)
        created, completed = when(created_us), when(completed_us)
        total = _records(rng, kind)
        failed = rng.random() < FAILED_SHARE
        rejected = 0 if failed or rng.random() >= PARTLY_REJECTED_SHARE else rng.randrange(1, total + 1)
        code, message = ERRORS[number % len(ERRORS)] if failed else (None, None)
        stem = f"feed-{created[:10]}-{number:07d}"
        sha256 = None if kind in REPORT_TYPES else rng.randbytes(32).hex()
        row: tuple[Any, ...] = (
            number,
            kind,
            "failed" if failed else "completed",
            1 + (number % 7 == 0) + (number % 97 == 0) + (number % 991 == 0),
            created,
            created,
            completed,
            completed,
            f"wardbulk report {kind}" if sha256 is None else f"{stem}.csv",
            f"/srv/wardbulk/outbox/{kind}/{stem}.op{number}.result.csv",
            sha256,
            HOST,
            total,
            total,
            0 if failed else total - rejected,
            total if code == "unknown_bed" else rejected,
            code,
            message,
        )
        if plan.purged_column:
            aged = plan.end_us - completed_us > retention_us
            row = (*row, when(completed_us + retention_us) if aged else None)
        claim = None if sha256 is None or failed else (kind, sha256, number, created)
        yield row, claim


def _users(now: datetime) -> list[dict[str, Any]]:
    created = now - timedelta(days=HISTORY_DAYS + 1)
    return [
        {
            "id": number,
            "username": name,
            "email": None,
            "first_name": "",
            "last_name": "",
            "is_active": True,
            "created_at": created,
        }
        for number, name in enumerate(FEED_USERS, start=1)
    ]


def _columns_of(connection: Connection, table: str) -> set[str]:
    if connection.dialect.name == "sqlite":
        return {str(row[1]) for row in connection.exec_driver_sql(f"PRAGMA table_info({table})")}
    query = text("SELECT column_name FROM information_schema.columns WHERE table_name = :t")
    return {str(name) for (name,) in connection.execute(query, {"t": table})}


def _secondary_indexes(connection: Connection, table: str) -> list[tuple[str, str]]:
    """(name, DDL) of ``table``'s indexes that no constraint owns (those can be dropped and re-created)."""
    if connection.dialect.name == "sqlite":
        query = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
        )
    else:
        query = (
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
            " WHERE x.indrelid = CAST(:t AS regclass)"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        )
    return [(str(name), str(ddl)) for name, ddl in connection.execute(text(query), {"t": table})]


@contextmanager
def _indexes_built_afterwards(connection: Connection, table: str) -> Iterator[None]:
    """Drop ``table``'s secondary indexes, and create them again from their own DDL on the way out."""
    indexes = _secondary_indexes(connection, table)
    for name, _ in indexes:
        connection.execute(text(f'DROP INDEX "{name}"'))
    yield
    for _, ddl in indexes:
        connection.execute(text(ddl))


def _driver(connection: Connection) -> Any:
    """The driver's own connection (sqlite3's or psycopg's) under ``connection``."""
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection is closed")
    return driver


class BatchWriter:
    """Writes batches of rows (tuples in a fixed column order) through the connection's driver: SQLite's
    ``executemany`` of one prepared INSERT, PostgreSQL's ``COPY FROM STDIN``. Values are already in the
    form the database stores (see ``TimeText``), so SQLAlchemy's per-value processing is skipped."""

    def __init__(self, connection: Connection) -> None:
        self._driver = _driver(connection)
        self._sqlite = connection.dialect.name == "sqlite"

    def write(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self._sqlite:
            marks = ", ".join("?" * len(columns))
            self._driver.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608
            return
        with self._driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def insert_operations(connection: Connection, rng: random.Random, plan: Plan, when: TimeText) -> HistoryTally:
    """The users, then the operations and their claims, in batches of ``BATCH`` operations."""
    users = _users(datetime.now(UTC))
    connection.execute(insert(_table(User)), users)
    tally = HistoryTally(users=len(users))
    columns = (*OPERATION_COLUMNS, PURGED_COLUMN) if plan.purged_column else OPERATION_COLUMNS
    writer = BatchWriter(connection)
    operations: list[tuple[Any, ...]] = []
    claims: list[tuple[Any, ...]] = []
    for row, claim in operation_rows(rng, plan, when):
        operations.append(row)
        if claim is not None:
            claims.append(claim)
        if len(operations) >= BATCH:
            _tally(tally, operations, len(claims))
            writer.write("bulk_operations", columns, operations)
            writer.write("file_claims", CLAIM_COLUMNS, claims)
            operations.clear()
            claims.clear()
    _tally(tally, operations, len(claims))
    writer.write("bulk_operations", columns, operations)
    writer.write("file_claims", CLAIM_COLUMNS, claims)
    return tally


def _tally(tally: HistoryTally, operations: list[tuple[Any, ...]], claims: int) -> None:
    if not operations:
        return
    if not tally.first_created_at:
        tally.first_created_at = operations[0][4]
    tally.last_created_at = operations[-1][4]
    tally.operations += len(operations)
    tally.failed += sum(row[2] == "failed" for row in operations)
    tally.completed = tally.operations - tally.failed
    tally.records += sum(row[12] for row in operations)
    tally.successful_records += sum(row[14] for row in operations)
    tally.file_claims += claims


def _advance_sequences(connection: Connection) -> None:
    """PostgreSQL: move the id sequences past the explicit ids, or wardbulk's next insert would collide."""
    if connection.dialect.name != "postgresql":
        return
    for model in SEEDED_TABLES:
        name = model.__tablename__
        connection.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), coalesce(max(id), 1)) FROM {name}")  # noqa: S608
        )


def _ensure_empty(connection: Connection) -> None:
    for model in SEEDED_TABLES:
        if connection.execute(text(f"SELECT 1 FROM {model.__tablename__} LIMIT 1")).first():  # noqa: S608
            raise SystemExit(f"{model.__tablename__} is not empty: seed a fresh database")


@contextmanager
def _seeding_connection(database_url: str) -> Iterator[Connection]:
    """A connection of the project's engine (SQLite: foreign keys on) in one transaction.

    SQLite: the rollback journal instead of WAL while seeding (a transaction of gigabytes in WAL is
    written twice and leaves a WAL file as large), without fsyncs, with a large page cache for the
    claims' unique index; WAL is set back afterwards, as wardbulk's engine would at its next connection.
    """
    engine = build_engine(database_url, create=False)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        driver = _driver(connection)
        if sqlite:
            for pragma in ("journal_mode = DELETE", "synchronous = OFF", "cache_size = -524288"):
                driver.execute(f"PRAGMA {pragma}")
        with connection.begin():
            yield connection
        if sqlite:
            driver.execute("PRAGMA journal_mode = WAL")
    engine.dispose()


def _vacuum_analyze(database_url: str) -> None:
    """PostgreSQL: what autovacuum would have done over a year (this server may run without it)."""
    engine = build_engine(database_url, create=False)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for model in SEEDED_TABLES:
                connection.execute(text(f"VACUUM ANALYZE {model.__tablename__}"))
    engine.dispose()


def seed(database_url: str, operations: int, seed_label: int) -> dict[str, Any]:
    """Seed ``operations`` operations into the migrated, empty database; returns the tally and timings."""
    rng = datagen.seeded(f"operations:{seed_label}")
    end = datetime.now(UTC) - timedelta(minutes=1)
    end_us = (end - EPOCH) // timedelta(microseconds=1)
    start_us = end_us - HISTORY_DAYS * 86_400 * MICROSECONDS
    started = time.perf_counter()
    with _seeding_connection(database_url) as connection:
        when = TimeText("" if connection.dialect.name == "sqlite" else "+00")
        when.check_against(connection)
        _ensure_empty(connection)
        plan = Plan(operations, start_us, end_us, PURGED_COLUMN in _columns_of(connection, "bulk_operations"))
        with (
            _indexes_built_afterwards(connection, "bulk_operations"),
            _indexes_built_afterwards(connection, "file_claims"),
        ):
            tally = insert_operations(connection, rng, plan, when)
            inserted = time.perf_counter()
        _advance_sequences(connection)
        indexed = time.perf_counter()
    committed = time.perf_counter()
    _vacuum_analyze(database_url)
    return {
        **asdict(tally),
        "outputs_purged_at_seeded": plan.purged_column,
        "insert_s": round(inserted - started, 2),
        "index_s": round(indexed - inserted, 2),
        "commit_s": round(committed - indexed, 2),
        "vacuum_analyze_s": round(time.perf_counter() - committed, 2),
    }


def build_dashboard(database_url: str, outbox: Path) -> dict[str, Any]:
    """``refresh_dashboard`` once, timed in-process; the page's path and size."""
    from processor.reports.dashboard import refresh_dashboard  # noqa: PLC0415 - only this command needs it

    engine = build_engine(database_url, create=False)
    started = time.perf_counter()
    page = refresh_dashboard(engine, outbox, datetime.now(UTC))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {"build_s": round(elapsed, 4), "page": str(page), "page_bytes": page.stat().st_size}


# ---------------------------------------------------------------------------------------------------
# The case: seed, then measure wardbulk's processes on the seeded database and beside it on a fresh one.


@dataclass(frozen=True)
class Size:
    """One measured history: ``full_size`` operations (times the scale) on ``backend``."""

    backend: str  # "sqlite" or "postgresql"
    full_size: int

    def label(self, operations: int) -> str:
        return f"{operations:,} ops, {'SQLite' if self.backend == 'sqlite' else 'PostgreSQL'}"


SIZES = (Size("sqlite", 1_000_000), Size("sqlite", 5_000_000), Size("postgresql", 1_000_000))
# The targets are those of a year of a busy feed, on the default database; the other sizes are context.
TARGETED = Size("sqlite", 5_000_000)
REPEAT = 3  # best of; one run below REPEAT_FROM_SCALE, where start-up is all there is to measure
REPEAT_FROM_SCALE = 0.1
STATS_TARGET_S = 1.0
DASHBOARD_TARGET_S = 2.0
DASHBOARD_TARGET_MB = 150.0
THROUGHPUT_RATIO_TARGET = 0.9  # with the history, within 10% of the files/s without it
DAEMON = {"WARDBULK_STABILITY_WINDOW_S": str(small_files.STABILITY_WINDOW_S)}
# Patients of this case's small files are numbered from here, apart from small_files' own.
FIRST_PATIENT = 60_000_000
# PostgreSQL databases: these names and a tag of the run's work folder, so that two runs at once (the
# smoke test in a test suite beside a benchmark) never drop each other's databases.
HISTORY_DATABASE = "wardbulk_bench_history"
FRESH_DATABASE = "wardbulk_bench_history_fresh"


@dataclass(frozen=True)
class Expected:
    """What ``ops stats`` must report for a database, and the ids to list before and show."""

    operations: int
    completed: int
    failed: int
    records: int
    successful_records: int

    @property
    def middle_id(self) -> int:
        return max(1, self.operations // 2)


@dataclass(frozen=True)
class Timed:
    """One command measured ``REPEAT`` times: the best wall time is the figure."""

    runs: tuple[ProcessRun, ...]
    output: str  # the stdout of the last run

    @property
    def best_s(self) -> float:
        return best_of([run.wall_s for run in self.runs])

    @property
    def peak_rss_mb(self) -> float:
        return max(run.peak_rss_mb for run in self.runs)

    def details(self) -> dict[str, Any]:
        return {
            "best_s": round(self.best_s, 4),
            "times_s": [round(run.wall_s, 4) for run in self.runs],
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def repeats(ctx: BenchContext) -> int:
    """How many times each command is run (the best is the figure)."""
    return REPEAT if ctx.scale >= REPEAT_FROM_SCALE else 1


def _timed_wardbulk(workspace: Workspace, repeat: int, name: str, *args: str) -> Timed:
    """``wardbulk ARGS`` ``repeat`` times, each checked for exit 0; its stdout kept apart from stderr."""
    runs = []
    for attempt in range(repeat):
        log = workspace.logs / f"{name}-{attempt}.log"
        out = workspace.logs / f"{name}-{attempt}.out"
        command = [*wardbulk_command(), *args]
        runs.append(run_measured(command, log, workspace.env(), workspace.root, stdout=out).check())
    return Timed(tuple(runs), out.read_text(encoding="utf-8"))


def _has_before_option(workspace: Workspace) -> bool:
    """Whether ``wardbulk ops list`` takes ``--before`` (issue 13's keyset pages); not measured."""
    done = subprocess.run(
        [*wardbulk_command(), "ops", "list", "--help"],
        env=workspace.env(),
        cwd=workspace.root,
        capture_output=True,
        text=True,
        check=True,
    )
    return "--before" in done.stdout


def _check_stats(output: str, expected: Expected, where: str) -> None:
    """``BenchFailure`` unless ``ops stats --json`` counted exactly the operations and records there are."""
    totals = json.loads(output)["all"]
    wanted = {**asdict(expected), "in_progress": 0}
    got = {key: totals.get(key) for key in wanted}
    if got != wanted:
        raise BenchFailure(f"ops stats --json on {where}: expected {wanted}, got {got}")


def _check_shown(output: str, pattern: str, what: str) -> None:
    if not re.search(pattern, output, re.MULTILINE):
        raise BenchFailure(f"{what} printed no line matching {pattern!r}:\n{output[-2000:]}")


def _ops_stats(workspace: Workspace, repeat: int, expected: Expected) -> Timed:
    """``ops stats --json``, timed; it must count exactly the operations there are."""
    stats = _timed_wardbulk(workspace, repeat, "ops-stats", "ops", "stats", "--json")
    _check_stats(stats.output, expected, workspace.root.name)
    return stats


def _ops_commands(workspace: Workspace, repeat: int, expected: Expected, before: bool) -> dict[str, Timed]:
    """``ops stats --json``, ``ops list``, ``ops list --before <middle>`` (or ``--limit 100`` without that
    option) and ``ops show <middle>``, each timed and its output checked."""
    middle = expected.middle_id
    stats = _ops_stats(workspace, repeat, expected)
    listed = _timed_wardbulk(workspace, repeat, "ops-list", "ops", "list")
    _check_shown(listed.output, rf"\b{expected.operations}\b", "ops list")
    paging = ("--before", str(middle)) if before else ("--limit", "100")
    paged = _timed_wardbulk(workspace, repeat, "ops-list-page", "ops", "list", *paging)
    if before and middle > 1:
        _check_shown(paged.output, rf"\b{middle - 1}\b", f"ops list --before {middle}")
    shown = _timed_wardbulk(workspace, repeat, "ops-show", "ops", "show", str(middle))
    _check_shown(shown.output, rf"^id\s+{middle}\s*$", f"ops show {middle}")
    return {"ops_stats": stats, "ops_list": listed, "ops_list_page": paged, "ops_show": shown}


def _timed_dashboard(workspace: Workspace, repeat: int) -> tuple[Timed, list[dict[str, Any]]]:
    """``python -m bench.history dashboard`` ``repeat`` times: ``refresh_dashboard`` once per process."""
    runs, builds = [], []
    for attempt in range(repeat):
        args = ["dashboard", "--database-url", workspace.database_url, "--outbox", str(workspace.outbox)]
        log = workspace.logs / f"dashboard-{attempt}.log"
        run, output = run_module("bench.history", args, log, workspace.env())
        build = json.loads(output.strip().splitlines()[-1])
        if build["page_bytes"] <= 0:
            raise BenchFailure(f"the dashboard build wrote an empty page (log {log})")
        runs.append(run)
        builds.append(build)
    return Timed(tuple(runs), output), builds


@dataclass(frozen=True)
class Burst:
    """A burst of small files into a running daemon: files/s, latencies and the details."""

    files_per_s: float
    p95_s: float
    details: dict[str, Any]


def _burst(workspace: Workspace, files: list[Path]) -> Burst:
    """``bench.small_files``'s measurement: the files dropped at once into a running ``wardbulk run``."""
    drops, summaries, daemon = small_files._measure(workspace, files)
    latencies = list(small_files._latencies(drops, summaries).values())
    elapsed = max(small_files._published_at(path) for path in summaries.values()) - drops[0].dropped_at
    service = small_files._service_times(summaries)
    details = {**small_files._details(drops, latencies, service, elapsed), **daemon}
    del details["latencies_ms_sorted"]  # 1,000 numbers a burst, 18 bursts: p50, p95 and max are kept
    return Burst(len(files) / elapsed, percentile(latencies, 0.95), details)


@dataclass(frozen=True)
class Bursts:
    """The bursts into one database: the best files/s and the best p95 are the figures."""

    runs: tuple[Burst, ...]

    @property
    def files_per_s(self) -> float:
        return max(run.files_per_s for run in self.runs)

    @property
    def p95_s(self) -> float:
        return best_of([run.p95_s for run in self.runs])

    def details(self) -> dict[str, Any]:
        return {
            "best_files_per_s": round(self.files_per_s, 2),
            "best_p95_s": round(self.p95_s, 4),
            "files_per_s": [round(run.files_per_s, 2) for run in self.runs],
            "runs": [run.details for run in self.runs],
        }


def _round_files(ctx: BenchContext, round_number: int, count: int) -> list[Path]:
    """Round ``round_number``'s ``count`` files of ``ROWS_PER_FILE`` patients, new patients every round
    (a round's files go into both databases; the next round's must be neither duplicates nor known
    patients). Named per round: a burst's summaries are matched to its files by name."""
    folder = ctx.data / "history-small-files"
    folder.mkdir(exist_ok=True)
    files = []
    for index in range(count):
        path = folder / f"round{round_number}-drop-{index:05d}.csv"
        first = FIRST_PATIENT + (round_number * count + index) * small_files.ROWS_PER_FILE
        if not path.exists():
            datagen.write_import_patients(path, small_files.ROWS_PER_FILE, first, ctx.seed)
        files.append(path)
    return files


def _alternating_bursts(
    ctx: BenchContext, key: str, count: int, databases: dict[str, str]
) -> dict[str, Bursts]:
    """``repeats(ctx)`` rounds of the burst into each database (by name), alternating which goes first;
    each burst in a workspace of its own (folders, which ``wardbulk run`` creates) on that database, with
    new files every round."""
    runs: dict[str, list[Burst]] = {name: [] for name in databases}
    for round_number in range(repeats(ctx)):
        files = _round_files(ctx, round_number, count)
        order = list(databases) if round_number % 2 == 0 else list(reversed(databases))
        for name in order:
            workspace = ctx.workspace(f"history-{key}-{name}-burst{round_number}", databases[name], **DAEMON)
            runs[name].append(_burst(workspace, files))
            ctx.discard(workspace)
    return {name: Bursts(tuple(bursts)) for name, bursts in runs.items()}


def _burst_expected(files: int) -> Expected:
    rows = files * small_files.ROWS_PER_FILE
    return Expected(files, files, 0, rows, rows)


@contextmanager
def _databases(ctx: BenchContext, backend: str) -> Iterator[tuple[str, str]]:
    """(seeded, fresh) database URLs: "" for SQLite (each workspace's own file); on PostgreSQL two fresh
    databases on the server, dropped on the way out unless ``keep``."""
    if backend == "sqlite":
        yield "", ""
        return
    server = make_url(ctx.postgres_url)
    tag = hashlib.sha256(str(ctx.workdir).encode()).hexdigest()[:8]
    names = (f"{HISTORY_DATABASE}_{tag}", f"{FRESH_DATABASE}_{tag}")
    with psycopg.connect(libpq(server), autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            seeded, fresh = (
                server.set(database=name).render_as_string(hide_password=False) for name in names
            )
            yield seeded, fresh
        finally:
            for name in names if not ctx.keep else ():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seed(ctx: BenchContext, workspace: Workspace, operations: int) -> tuple[Expected, dict[str, Any]]:
    args = ["seed", "--database-url", workspace.database_url, "--operations", str(operations)]
    run, output = run_module("bench.history", [*args, "--seed", str(ctx.seed)], workspace.logs / "seed.log")
    seeded: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    seeded["seed_wall_s"] = round(run.wall_s, 2)
    seeded["seed_peak_rss_mb"] = round(run.peak_rss_mb, 1)
    expected = Expected(*(seeded[field.name] for field in fields(Expected)))
    if expected.operations != operations:
        raise BenchFailure(f"the seeder wrote {expected.operations} operations of {operations}")
    return expected, seeded


@dataclass
class Measured:
    """Everything measured on one database."""

    ops: dict[str, Timed]
    dashboard: Timed
    builds: list[dict[str, Any]]
    burst: Bursts

    def details(self) -> dict[str, Any]:
        return {
            **{name: timed.details() for name, timed in self.ops.items()},
            "dashboard": {
                **self.dashboard.details(),
                "in_process_build_s": [b["build_s"] for b in self.builds],
            },
            "dashboard_page_bytes": self.builds[-1]["page_bytes"],
            "small_files": self.burst.details(),
        }


def _measure_size(ctx: BenchContext, size: Size, files: int) -> tuple[Measured, Measured, dict[str, Any]]:
    """Seed; every command over exactly the seeded history; the bursts into the seeded and a fresh
    database, alternating; then ``ops stats`` and the dashboard over the fresh database's burst
    operations (their start-up floor)."""
    operations, repeat = ctx.rows(size.full_size), repeats(ctx)
    key = f"{size.backend}-{operations}"
    with _databases(ctx, size.backend) as (seeded_url, fresh_url):
        workspace = ctx.workspace(f"history-{key}", seeded_url)
        workspace.init()
        fresh = ctx.workspace(f"history-{key}-fresh", fresh_url)
        fresh.init()
        before = _has_before_option(workspace)
        expected, seeded = _seed(ctx, workspace, operations)
        history_ops = _ops_commands(workspace, repeat, expected, before)
        dashboard = _timed_dashboard(workspace, repeat)
        databases = {"fresh": fresh.database_url, "history": workspace.database_url}
        bursts = _alternating_bursts(ctx, key, files, databases)
        fresh_stats = _ops_stats(fresh, repeat, _burst_expected(repeat * files))
        fresh_dashboard = _timed_dashboard(fresh, repeat)
        with_history = Measured(history_ops, *dashboard, bursts["history"])
        without = Measured({"ops_stats": fresh_stats}, *fresh_dashboard, bursts["fresh"])
        ctx.discard(workspace)
        ctx.discard(fresh)
    setup = {"seeded": seeded, "middle_id": expected.middle_id, "before_option": before}
    return with_history, without, setup


def _time_figure(name: str, value: Timed, beside: Timed | None = None, limit: float | None = None) -> Figure:
    target = f"≤ {limit:g} s" if limit is not None else ""
    met = value.best_s <= limit if limit is not None else None
    if beside is None:
        return Figure("history", name, value.best_s, "s", target, met)
    return Figure(
        "history", name, value.best_s, "s", target, met, beside.best_s, value.best_s / beside.best_s
    )


def _figures(size: Size, operations: int, measured: Measured, fresh: Measured, before: bool) -> list[Figure]:
    """The figures of one size: each beside the same on the fresh database; targets at ``TARGETED``."""
    label = size.label(operations)
    targeted = size == TARGETED
    page = "ops list --before <middle id>" if before else "ops list --limit 100 (no --before)"
    ops, beside = measured.ops, fresh.ops
    rss, fresh_rss = measured.dashboard.peak_rss_mb, fresh.dashboard.peak_rss_mb
    stats_rss = ops["ops_stats"].peak_rss_mb
    rate, fresh_rate = measured.burst.files_per_s, fresh.burst.files_per_s
    p95, fresh_p95 = measured.burst.p95_s, fresh.burst.p95_s
    return [
        _time_figure(
            f"ops stats --json, {label}",
            ops["ops_stats"],
            beside["ops_stats"],
            STATS_TARGET_S if targeted else None,
        ),
        Figure(
            "history",
            f"ops stats peak RSS, {label}",
            stats_rss,
            "MB",
            raw=beside["ops_stats"].peak_rss_mb,
            ratio=stats_rss / beside["ops_stats"].peak_rss_mb,
        ),
        _time_figure(f"ops list, {label}", ops["ops_list"]),
        _time_figure(f"{page}, {label}", ops["ops_list_page"]),
        _time_figure(f"ops show <middle id>, {label}", ops["ops_show"]),
        _time_figure(
            f"dashboard build, {label}",
            measured.dashboard,
            fresh.dashboard,
            DASHBOARD_TARGET_S if targeted else None,
        ),
        Figure(
            "history",
            f"dashboard build peak RSS, {label}",
            rss,
            "MB",
            f"≤ {DASHBOARD_TARGET_MB:.0f} MB" if targeted else "",
            rss <= DASHBOARD_TARGET_MB if targeted else None,
            fresh_rss,
            rss / fresh_rss,
        ),
        Figure(
            "history",
            f"small files with the history, {label}",
            rate,
            "files/s",
            f"≥ {THROUGHPUT_RATIO_TARGET}{TIMES} without it" if targeted else "",
            rate / fresh_rate >= THROUGHPUT_RATIO_TARGET if targeted else None,
            fresh_rate,
            rate / fresh_rate,
        ),
        Figure(
            "history",
            f"small files p95 latency with the history, {label}",
            p95,
            "s",
            raw=fresh_p95,
            ratio=p95 / fresh_p95,
        ),
    ]


def history(ctx: BenchContext) -> CaseResult:
    """Case 7: ops commands, the dashboard build and the small-file rate over a year of operations."""
    result = CaseResult("history")
    files = ctx.rows(small_files.FILES)
    for size in SIZES:
        operations = ctx.rows(size.full_size)
        measured, fresh, setup = _measure_size(ctx, size, files)
        result.figures += _figures(size, operations, measured, fresh, setup["before_option"])
        rounds = zip(measured.burst.runs, fresh.burst.runs, strict=True)
        result.details[f"{size.backend}-{operations}"] = {
            **setup,
            "with_history": measured.details(),
            "fresh": fresh.details(),
            "files_per_s_ratio_by_round": [round(h.files_per_s / f.files_per_s, 3) for h, f in rounds],
        }
    result.details["repeat"] = repeats(ctx)
    result.details["files"] = files
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    """``seed --database-url URL --operations N [--seed S]``; ``dashboard --database-url URL --outbox D``."""
    parser = argparse.ArgumentParser(prog="python -m bench.history")
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed", help="seed a year of operations into a fresh database")
    seeding.add_argument("--database-url", required=True)
    seeding.add_argument("--operations", type=int, required=True)
    seeding.add_argument("--seed", type=int, default=1)
    dashboard = commands.add_parser("dashboard", help="build outbox/dashboard.html once")
    dashboard.add_argument("--database-url", required=True)
    dashboard.add_argument("--outbox", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    """Run the command and print its JSON on the last line of stdout."""
    args = parse_args(argv)
    if args.command == "seed":
        output = seed(args.database_url, args.operations, args.seed)
    else:
        output = build_dashboard(args.database_url, args.outbox)
    print(json.dumps(output))


if __name__ == "__main__":
    main(sys.argv[1:])

"""The history at millions of operations (issue 13): durations computed exactly by the database, the
indexes of migration 0005, and query plans that read them instead of the whole table.

Timings are measured by hand (see the issue); these tests pin what makes them: each statement's plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from processor.adapters.database.engine import build_engine
from processor.adapters.database.history import (
    HistoryFilter,
    list_operations,
    operation_detail,
    operation_stats,
)
from processor.adapters.database.migrations import downgrade_to, upgrade_to_head
from processor.adapters.database.models import OPERATION_DURATION, BulkOperation
from tests.conftest import Database, _truncate_all
from tests.test_ops_history import FILTERS, TYPES, insert_operations, varied_operations

HISTORY_INDEXES = {
    "ix_bulk_operations_operation_type_id",
    "ix_bulk_operations_status_id",
    "ix_bulk_operations_created_at_id",
    "ix_bulk_operations_type_duration",
    "ix_bulk_operations_duration",
}
INDEX_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bulk_operations'",
    "postgresql": "SELECT indexname FROM pg_indexes WHERE tablename = 'bulk_operations'",
}


def edge_operations() -> list[dict[str, Any]]:
    """Start and completion times that an inexact duration gets wrong: a fraction SQLite would round up
    to the next minute, midnight, a month's end, a leap day, no fraction at all, zero and negative."""
    cases = [
        (datetime(2026, 10, 31, 23, 59, 59, 999_600, UTC), timedelta(microseconds=400)),
        (datetime(2026, 10, 31, 23, 59, 59, 999_999, UTC), timedelta(microseconds=1)),
        (datetime(2028, 2, 28, 23, 0, 0, 500_000, UTC), timedelta(days=1, hours=1, microseconds=123_457)),
        (datetime(2026, 11, 1, 8, 0, 0, tzinfo=UTC), timedelta(seconds=1)),
        (datetime(2026, 11, 1, 8, 0, 0, 100_000, UTC), timedelta(0)),
        (datetime(2026, 11, 1, 8, 0, 0, 100_000, UTC), -timedelta(seconds=3, microseconds=7)),
        (datetime(2026, 11, 1, 8, 0, 0, 333_333, UTC), timedelta(days=400, microseconds=999_999)),
    ]
    return [
        {
            "operation_type": "sync_beds",
            "status": "completed",
            "created_at": started,
            "started_at": started,
            "completed_at": started + duration,
        }
        for started, duration in cases
    ]


def test_the_database_computes_each_duration_exactly_as_the_model_does(database: Database) -> None:
    """The same float as ``BulkOperation.duration`` (``timedelta.total_seconds``), not an approximation."""
    insert_operations(database.engine, edge_operations() + varied_operations(150))
    with Session(database.engine) as session:
        expected = {op.id: op.duration for op in session.scalars(select(BulkOperation))}
        computed = {row[0]: row[1] for row in session.execute(select(BulkOperation.id, OPERATION_DURATION))}
    assert computed == expected
    assert all(value is None or type(value) is float for value in computed.values())
    assert None in computed.values()


def test_0005_adds_the_history_indexes_and_removes_them(empty_database_url: str) -> None:
    """Up, down to 0004 and up again, on both databases, keeping every operation. (The totals index
    that 0005 made for the counts is gone at head: 0007's tallies count instead.)"""
    engine = build_engine(empty_database_url)
    upgrade_to_head(engine)
    insert_operations(engine, varied_operations(10))
    assert index_names(engine) >= HISTORY_INDEXES
    downgrade_to(engine, "0004")
    assert not index_names(engine) & HISTORY_INDEXES
    assert operation_count(engine) == 10
    upgrade_to_head(engine)
    assert index_names(engine) >= HISTORY_INDEXES
    assert operation_stats(engine)["all"]["operations"] == operation_count(engine) == 10
    engine.dispose()


def operation_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM bulk_operations")).scalar_one())


def index_names(engine: Engine) -> set[str]:
    """Read from the catalogue: SQLAlchemy does not reflect SQLite's indexes on expressions."""
    with engine.connect() as connection:
        return set(connection.execute(text(INDEX_NAMES[engine.dialect.name])).scalars())


@contextmanager
def plans_of_statements(engine: Engine, explain: Callable[[Any, str, Any], list[str]]) -> Iterator[list[Any]]:
    """Collects (statement, plan lines) of every SELECT run on ``engine`` inside the block."""
    plans: list[Any] = []

    def before(_conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("SELECT"):
            plans.append((statement, explain(cursor, statement, parameters)))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield plans
    finally:
        event.remove(engine, "before_cursor_execute", before)


def sqlite_plan(cursor: Any, statement: str, parameters: Any) -> list[str]:
    return [str(row[3]) for row in cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]


@pytest.fixture
def sqlite_history(tmp_path: Any) -> Iterator[Engine]:
    engine = build_engine(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    upgrade_to_head(engine)
    insert_operations(engine, varied_operations(300))
    yield engine
    engine.dispose()


STATS_INDEXES = ("ix_bulk_operations_type_duration", "ix_bulk_operations_duration")
TALLIES = ("operation_tallies", "operation_duration_tallies")


@pytest.mark.parametrize("wanted", FILTERS, ids=str)
def test_sqlite_statistics_walk_their_indexes_whatever_the_filter(
    sqlite_history: Engine, wanted: HistoryFilter
) -> None:
    """Counts from the tallies alone; each median and p95 a walk along a duration index (within one
    bucket of the duration tallies, or along it all for a filter with days), never a sort; no filter
    makes SQLite seek by the creation-time or status index instead (then it would read and sort every
    operation of the range). A duration index is used only if the query's expression is the
    migration's very expression."""
    with plans_of_statements(sqlite_history, sqlite_plan) as plans:
        operation_stats(sqlite_history, wanted)
    assert plans
    for statement, plan in plans:
        assert not any("TEMP B-TREE" in line for line in plan) or "FROM operation_" in statement, plan
        reads = [line for line in plan if "bulk_operations" in line]
        if "FROM operation_" in statement:
            assert not reads and any(table in line for line in plan for table in TALLIES), plan
        else:
            assert reads and all(any(index in line for index in STATS_INDEXES) for line in reads), plan


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        (HistoryFilter(), None),
        (HistoryFilter(before=150), None),
        (HistoryFilter(operation_type="sync_beds", before=150), "ix_bulk_operations_operation_type_id"),
        (HistoryFilter(status="failed", before=150), "ix_bulk_operations_status_id"),
    ],
    ids=str,
)
def test_sqlite_pages_are_one_index_range_and_show_is_one_key(
    sqlite_history: Engine, wanted: HistoryFilter, index: str | None
) -> None:
    with plans_of_statements(sqlite_history, sqlite_plan) as plans:
        list_operations(sqlite_history, wanted)
        operation_detail(sqlite_history, 150)
    (_, page_plan), (_, show_plan) = plans
    assert not any("TEMP B-TREE" in line for line in page_plan), page_plan
    if index:
        assert any(index in line for line in page_plan), page_plan
    assert [line for line in show_plan if "bulk_operations" in line] == [
        "SEARCH bulk_operations USING INTEGER PRIMARY KEY (rowid=?)"
    ]


def test_sqlite_a_date_range_page_reads_the_creation_time_index_or_the_key(sqlite_history: Engine) -> None:
    """A date range's page: its newest ids from the (created_at, id) index alone (sorting ids only), or
    the primary key walked from the newest down; never the operations' rows read and sorted."""
    for wanted in (
        HistoryFilter(since=date(2026, 11, 1), until=date(2026, 11, 2), limit=5),
        HistoryFilter(until=date(2026, 10, 31), limit=5),
        HistoryFilter(since=date(2026, 11, 1), limit=5),
    ):
        with plans_of_statements(sqlite_history, sqlite_plan) as plans:
            assert len(list_operations(sqlite_history, wanted)) == 5
        ((_, plan),) = plans
        from_index = any("COVERING INDEX ix_bulk_operations_created_at_id" in line for line in plan)
        by_key = "SCAN bulk_operations" in plan and not any("TEMP B-TREE" in line for line in plan)
        assert from_index or by_key, plan


def postgresql_plan(cursor: Any, statement: str, parameters: Any) -> list[str]:
    """The plan PostgreSQL would choose if the table were large (sequential scans made costly)."""
    cursor.execute("SET LOCAL enable_seqscan = off")
    cursor.execute(f"EXPLAIN {statement}", parameters)
    lines = [str(row[0]) for row in cursor.fetchall()]
    cursor.execute("SET LOCAL enable_seqscan = on")
    return lines


@pytest.mark.postgres_only
def test_postgresql_ranks_durations_from_the_duration_indexes_alone(postgres_session_url: URL) -> None:
    """An index-only scan proves the query's duration is the indexed expression, and that INCLUDE holds
    the columns it is computed from."""
    engine = build_engine(postgres_session_url)
    try:
        insert_operations(engine, varied_operations(300))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE bulk_operations"))  # the visibility map, as autovacuum
        with plans_of_statements(engine, postgresql_plan) as plans:
            operation_stats(engine, HistoryFilter(since=date(2026, 11, 1)))
    finally:
        _truncate_all(engine)
        engine.dispose()
    ranking = [plan for statement, plan in plans if "LIMIT" in statement]
    assert len(ranking) == 2 * (len(TYPES) + 1)
    for plan in ranking:
        scans = [line for line in plan if "Index Only Scan" in line]
        assert any(
            "ix_bulk_operations_type_duration" in line or "ix_bulk_operations_duration" in line
            for line in scans
        ), plan

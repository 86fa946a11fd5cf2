"""The history's tallies (migration 0007): the database keeps them equal to ``bulk_operations`` through
every insert, update and delete, whoever writes; the statistics read them instead of counting millions
of operations, and find each median and p95 in one bucket of durations.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select, text, update

from processor.adapters.database.engine import build_engine
from processor.adapters.database.history import HistoryFilter, operation_stats
from processor.adapters.database.migrations import downgrade_to, upgrade_to_head
from processor.adapters.database.models import BulkOperation
from processor.adapters.database.tallies import (
    BUCKET_LADDER,
    LONGEST_WIDTH,
    OperationDurationTally,
    OperationTally,
    bucket_bounds,
    bucket_of,
)
from tests.conftest import Database
from tests.test_history_scale import edge_operations, index_names
from tests.test_ops_history import insert_operations, reference_stats, varied_operations

Key = tuple[Any, ...]


def recounted(engine: Engine) -> tuple[dict[Key, tuple[int, ...]], Counter[Key]]:
    """The tallies as they should be, counted in Python from every operation."""
    totals: dict[Key, list[int]] = {}
    durations: Counter[Key] = Counter()
    with engine.connect() as connection:
        op = BulkOperation
        tallied_columns = (
            op.operation_type,
            op.status,
            op.created_at,
            op.started_at,
            op.completed_at,
            op.total_records,
            op.successful_records,
        )  # only these: the test also runs on older schemas (0008 added a column)
        for row in connection.execute(select(*tallied_columns)):
            key = (row.operation_type, row.status, row.created_at.astimezone(UTC).date())
            finished = row.started_at is not None and row.completed_at is not None
            sums = totals.setdefault(key, [0, 0, 0, 0])
            for at, value in enumerate((1, row.total_records, row.successful_records, int(finished))):
                sums[at] += value
            if finished:
                microseconds = (row.completed_at - row.started_at) // timedelta(microseconds=1)
                durations[(row.operation_type, row.status, bucket_of(microseconds))] += 1
    return {key: tuple(sums) for key, sums in totals.items()}, durations


def tallied(engine: Engine) -> tuple[dict[Key, tuple[int, ...]], Counter[Key]]:
    """The tallies as the database holds them, rows of zeros left out (a key whose operations all left)."""
    with engine.connect() as connection:
        totals = {
            (row.operation_type, row.status, row.created_on): (
                row.operations,
                row.total_records,
                row.successful_records,
                row.finished,
            )
            for row in connection.execute(select(OperationTally))
            if row.operations or row.total_records or row.successful_records or row.finished
        }
        durations = Counter(
            {
                (row.operation_type, row.status, row.bucket_us): row.operations
                for row in connection.execute(select(OperationDurationTally))
                if row.operations
            }
        )
    return totals, durations


def assert_tallies_hold(engine: Engine) -> None:
    expected_totals, expected_durations = recounted(engine)
    totals, durations = tallied(engine)
    assert totals == expected_totals
    assert durations == expected_durations


def test_the_tallies_follow_every_insert_update_and_delete(database: Database) -> None:
    engine = database.engine
    insert_operations(engine, varied_operations(150))
    insert_operations(engine, edge_operations())
    assert_tallies_hold(engine)
    later = datetime(2026, 11, 20, 9, 30, 0, 123_456, UTC)
    changes = [
        update(BulkOperation)
        .where(BulkOperation.status == "pending")
        .values(status="processing", started_at=later),
        update(BulkOperation)
        .where(BulkOperation.status == "processing")
        .values(
            status="completed",
            completed_at=later + timedelta(seconds=3),
            total_records=7,
            successful_records=5,
        ),
        update(BulkOperation).where(BulkOperation.id % 5 == 0).values(status="failed"),
        update(BulkOperation).where(BulkOperation.id % 7 == 0).values(created_at=later),
        update(BulkOperation).where(BulkOperation.id % 11 == 0).values(operation_type="sync_beds"),
        update(BulkOperation).where(BulkOperation.id % 13 == 0).values(started_at=None),
        update(BulkOperation).values(heartbeat_at=later, processed_records=3),  # tallies nothing
        delete(BulkOperation).where(BulkOperation.id % 3 == 0),
    ]
    for change in changes:
        with engine.begin() as connection:
            connection.execute(change)
        assert_tallies_hold(engine)


def test_a_type_whose_operations_all_went_is_no_longer_counted(database: Database) -> None:
    insert_operations(database.engine, varied_operations(40))
    with database.engine.begin() as connection:
        connection.execute(delete(BulkOperation).where(BulkOperation.operation_type == "sync_beds"))
    stats = operation_stats(database.engine)
    assert "sync_beds" not in stats["by_type"]
    rows = varied_operations(40)
    left = [row for row in rows if row["operation_type"] != "sync_beds"]
    assert stats == reference_stats(left, HistoryFilter())


def test_the_databases_buckets_are_the_documented_ones(database: Database) -> None:
    """What the triggers store for durations at every edge of the ladder is ``bucket_of``'s bucket, and
    each bucket's bounds hold its durations."""
    edges = [0, 1, 999, 1_000, 1_001]
    for below, width in BUCKET_LADDER:
        edges += [below - width - 1, below - width, below - 1, below, below + 1]
    edges += [LONGEST_WIDTH * 1000 + 17, -1, -(10**7)]
    start = datetime(2026, 11, 1, 8, 0, 0, 250_000, UTC)
    rows = [
        {
            "operation_type": "sync_beds",
            "status": "completed",
            "created_at": start,
            "started_at": start,
            "completed_at": start + timedelta(microseconds=microseconds),
        }
        for microseconds in edges
    ]
    insert_operations(database.engine, rows)
    expected = Counter(bucket_of(microseconds) for microseconds in edges)
    with database.engine.connect() as connection:
        stored = dict(
            connection.execute(
                select(OperationDurationTally.bucket_us, OperationDurationTally.operations)
            ).all()
        )
    assert stored == expected
    for microseconds in edges:
        lowest, beyond = bucket_bounds(bucket_of(microseconds))
        assert (lowest is None or lowest <= microseconds) and microseconds < beyond


def test_0007_counts_the_history_already_there_and_goes_back(empty_database_url: str) -> None:
    """An existing database's operations are tallied by the upgrade itself; down again, the tallies go
    and 0005's totals index is back."""
    engine = build_engine(empty_database_url)
    try:
        upgrade_to_head(engine)
        downgrade_to(engine, "0006")
        insert_operations(engine, varied_operations(90))
        insert_operations(engine, edge_operations())
        upgrade_to_head(engine)
        assert_tallies_hold(engine)
        assert stats_match_reference(
            engine,
            varied_operations(90)
            + [
                {**row, "input_file": None, "total_records": 0, "successful_records": 0}
                for row in edge_operations()
            ],
        )
        downgrade_to(engine, "0006")
        assert "ix_bulk_operations_type_status_totals" in index_names(engine)
        with engine.connect() as connection:
            tables = {"sqlite": "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')"}
            query = tables.get(engine.dialect.name, "SELECT tablename FROM pg_tables")
            names = set(connection.execute(text(query)).scalars())
        assert not {name for name in names if name.startswith("operation_")}
        upgrade_to_head(engine)
        assert_tallies_hold(engine)
    finally:
        engine.dispose()


def stats_match_reference(engine: Engine, rows: list[dict[str, Any]]) -> bool:
    return operation_stats(engine) == reference_stats(rows, HistoryFilter())


@pytest.mark.parametrize(
    "wanted",
    [HistoryFilter(), HistoryFilter(operation_type="import_patients"), HistoryFilter(status="completed")],
    ids=str,
)
def test_a_median_is_read_within_its_bucket_not_walked_to(tmp_path: Any, wanted: HistoryFilter) -> None:
    """Without days in the filter, no walk along a duration index skips more operations than its bucket
    holds (before the tallies, a median skipped half of all of them)."""
    engine = build_engine(f"sqlite:///{tmp_path / 'walks.sqlite3'}")
    upgrade_to_head(engine)
    rows = varied_operations(600)
    insert_operations(engine, rows)
    offsets: list[int] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("SELECT") and "FROM bulk_operations" in statement and "OFFSET" in statement:
            offsets.append(parameters[-1])

    event.listen(engine, "before_cursor_execute", before)
    try:
        assert operation_stats(engine, wanted) == reference_stats(rows, wanted)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        engine.dispose()
    assert offsets and max(offsets) < max(operations_per_bucket(rows).values())


def operations_per_bucket(rows: list[dict[str, Any]]) -> Counter[int]:
    """How many of ``rows`` fall in each duration bucket."""
    buckets: Counter[int] = Counter()
    for row in rows:
        if row["started_at"] is not None and row["completed_at"] is not None:
            buckets[bucket_of((row["completed_at"] - row["started_at"]) // timedelta(microseconds=1))] += 1
    return buckets

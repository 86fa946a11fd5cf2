"""Operation history: `ops list` filters, `ops show`, `ops stats` arithmetic, tables and JSON."""

from __future__ import annotations

import json
import math
import random
import shlex
import statistics
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from processor.adapters.database.engine import build_engine
from processor.adapters.database.history import (
    HistoryFilter,
    list_operations,
    operation_detail,
    operation_stats,
)
from processor.adapters.database.migrations import upgrade_to_head
from processor.adapters.database.models import BulkOperation, User
from tests.conftest import Database, run_cli

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
# (type, status, day offset, duration s, total, successful)
OPERATIONS = [
    ("import_patients", "completed", 0, 2.0, 100, 98),
    ("import_patients", "failed", 1, 1.0, 10, 0),
    ("bulk_assignment", "completed", 2, 4.0, 50, 50),
    ("bulk_discharge", "completed", 3, 8.0, 20, 19),
    ("import_patients", "processing", 4, None, 200, 0),
    ("export_report", "completed", 5, 10.0, 3, 3),
]


def seed(engine: Any) -> None:
    with engine.begin() as connection:
        user = connection.execute(
            insert(User).returning(User.id), {"username": "adt-feed", "created_at": DAY}
        ).scalar_one()
        for n, (kind, status, offset, duration, total, ok) in enumerate(OPERATIONS, start=1):
            created = DAY + timedelta(days=offset)
            connection.execute(
                insert(BulkOperation),
                {
                    "operation_type": kind,
                    "status": status,
                    "initiated_by_id": user,
                    "created_at": created,
                    "started_at": created,
                    "completed_at": created + timedelta(seconds=duration) if duration else None,
                    "input_file": f"file{n}.csv",
                    "total_records": total,
                    "successful_records": ok,
                    "failed_records": total - ok if status != "processing" else 0,
                    "processed_records": total if status != "processing" else 80,
                    "error_message": "line 3: email is not a valid e-mail address (type-error)"
                    if status == "failed"
                    else None,
                    "error_code": "too-many-errors" if status == "failed" else None,
                },
            )


@pytest.fixture
def history(database: Database) -> Database:
    seed(database.engine)
    return database


@pytest.mark.parametrize(
    ("wanted", "ids"),
    [
        (HistoryFilter(), [6, 5, 4, 3, 2, 1]),
        (HistoryFilter(operation_type="import_patients"), [5, 2, 1]),
        (HistoryFilter(status="completed"), [6, 4, 3, 1]),
        (HistoryFilter(since=date(2026, 11, 22)), [6, 5, 4, 3]),
        (HistoryFilter(until=date(2026, 11, 21)), [2, 1]),
        (HistoryFilter(since=date(2026, 11, 21), until=date(2026, 11, 22), status="failed"), [2]),
        (HistoryFilter(limit=2), [6, 5]),
    ],
)
def test_list_is_newest_first_and_filters_like_the_seed_form(
    history: Database, wanted: HistoryFilter, ids: list[int]
) -> None:
    assert [op["id"] for op in list_operations(history.engine, wanted)] == ids


def test_an_operation_in_full_with_progress_and_first_errors(history: Database) -> None:
    running = operation_detail(history.engine, 5)
    assert running is not None
    assert (running["status"], running["processed_records"], running["progress_pct"]) == (
        "processing",
        80,
        40.0,
    )
    failed = operation_detail(history.engine, 2)
    assert failed is not None
    assert failed["first_errors"] == ["line 3: email is not a valid e-mail address (type-error)"]
    assert (failed["initiated_by"], failed["duration_s"], failed["success_rate"]) == ("adt-feed", 1.0, 0.0)
    assert operation_detail(history.engine, 99) is None


def test_stats_arithmetic(history: Database) -> None:
    stats = operation_stats(history.engine)
    assert stats["all"] == {
        "operations": 6,
        "completed": 4,
        "in_progress": 1,
        "failed": 1,
        "records": 383,
        "successful_records": 170,
        "success_rate": round(100 * 170 / 383, 2),
        "median_s": 4.0,
        "p95_s": 10.0,
    }
    imports = stats["by_type"]["import_patients"]
    assert (imports["operations"], imports["completed"], imports["failed"], imports["in_progress"]) == (
        3,
        1,
        1,
        1,
    )
    assert (imports["median_s"], imports["p95_s"]) == (1.5, 2.0)
    assert set(stats["by_type"]) == {"import_patients", "bulk_assignment", "bulk_discharge", "export_report"}


def test_stats_of_nothing_are_zeros_not_errors(database: Database) -> None:
    assert operation_stats(database.engine)["all"] == {
        "operations": 0,
        "completed": 0,
        "in_progress": 0,
        "failed": 0,
        "records": 0,
        "successful_records": 0,
        "success_rate": 0.0,
        "median_s": None,
        "p95_s": None,
    }


@pytest.fixture
def installed(tmp_path: Path, empty_database_url: str) -> tuple[Path, dict[str, str]]:
    engine = build_engine(empty_database_url)
    upgrade_to_head(engine)
    seed(engine)
    engine.dispose()
    return tmp_path, {"WARDBULK_DATABASE_URL": empty_database_url}


def test_the_ops_commands_print_json_for_scripts(installed: tuple[Path, dict[str, str]]) -> None:
    cwd, env = installed
    listed = json.loads(
        run_cli("ops", "list", "--json", "--type", "import_patients", cwd=cwd, env=env).stdout
    )
    assert [op["id"] for op in listed] == [5, 2, 1]
    assert {
        "id",
        "operation_type",
        "status",
        "input_file",
        "created_at",
        "duration_s",
        "total_records",
        "successful_records",
        "failed_records",
        "success_rate",
        "error_code",
    } <= set(listed[0])
    shown = json.loads(run_cli("ops", "show", "2", "--json", cwd=cwd, env=env).stdout)
    assert (shown["id"], shown["error_code"], shown["outputs"]) == (2, "too-many-errors", [])
    stats = json.loads(run_cli("ops", "stats", "--json", cwd=cwd, env=env).stdout)
    assert stats["all"]["operations"] == 6


def test_the_ops_commands_print_tables_and_clear_errors(installed: tuple[Path, dict[str, str]]) -> None:
    cwd, env = installed
    table = run_cli("ops", "list", "--status", "failed", cwd=cwd, env=env)
    assert table.returncode == 0 and "file2.csv" in table.stdout and "file1.csv" not in table.stdout
    assert "first errors:" in run_cli("ops", "show", "2", cwd=cwd, env=env).stdout
    assert "all" in run_cli("ops", "stats", cwd=cwd, env=env).stdout
    missing = run_cli("ops", "show", "99", cwd=cwd, env=env)
    assert (missing.returncode, missing.stderr.strip()) == (2, "wardbulk: error: there is no operation 99")
    bad = run_cli("ops", "list", "--status", "stuck", cwd=cwd, env=env)
    assert bad.returncode == 2


def test_show_lists_the_outbox_files_of_a_processed_file(tmp_path: Path) -> None:
    assert run_cli("init", "--demo", cwd=tmp_path).returncode == 0
    (tmp_path / "p.csv").write_text("first_name,last_name,email\nA,A,a@example.org\n")
    assert run_cli("process", "p.csv", "--operation", "import_patients", cwd=tmp_path).returncode == 0
    shown = json.loads(run_cli("ops", "show", "1", "--json", cwd=tmp_path).stdout)
    assert [Path(p).name for p in shown["outputs"]] == [
        "p.op1.result.csv",
        "p.op1.errors.csv",
        "p.op1.summary.json",
    ]


# --- Statistics against a reference computed in Python, and pages by keyset (issue 13) -----------------

TYPES = ("import_patients", "bulk_assignment", "sync_beds", "export_report")
STATUSES = ("completed", "completed", "completed", "failed", "processing", "pending")
START = datetime(2026, 10, 30, 23, 59, 59, 999_600, tzinfo=UTC)


def varied_operations(count: int, seed: int = 13) -> list[dict[str, Any]]:
    """Operations of several types and statuses over days; start times with and without microseconds,
    on a minute's and a day's last fraction of a second (SQLite rounds those to milliseconds), durations
    from zero to days, some equal, some unknown (not started, not completed, or a completion without a
    start); created in id order, several in the same microsecond."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        created = START + timedelta(seconds=(n // 3) * 3917.25)
        started = created + timedelta(microseconds=rng.choice((0, 400, 999_999, rng.randrange(10**6))))
        some = [timedelta(microseconds=rng.randrange(1, 10**9)) for _ in range(6)]
        duration = rng.choice(
            [None, timedelta(0), timedelta(seconds=2), timedelta(days=2, microseconds=1), *some]
        )
        status = rng.choice(STATUSES)
        rows.append(
            {
                "operation_type": TYPES[n % 7 % 4],
                "status": status,
                "created_at": created,
                "started_at": None if status == "pending" or n % 29 == 0 else started,
                "completed_at": None if duration is None or status == "processing" else started + duration,
                "input_file": f"v{n}.csv",
                "total_records": rng.randrange(0, 50),
                "successful_records": 0,
            }
        )
        rows[-1]["successful_records"] = rng.randrange(0, rows[-1]["total_records"] + 1)
    return rows


def insert_operations(engine: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(BulkOperation), rows)


def reference_stats(rows: list[dict[str, Any]], wanted: HistoryFilter) -> dict[str, Any]:
    """The statistics as the first version computed them: every operation in Python."""
    chosen = [row for row in rows if matches(row, wanted)]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in chosen:
        by_type.setdefault(row["operation_type"], []).append(row)
    return {
        "all": reference_totals(chosen),
        "by_type": {kind: reference_totals(of_kind) for kind, of_kind in sorted(by_type.items())},
    }


def matches(row: dict[str, Any], wanted: HistoryFilter) -> bool:
    day = row["created_at"].astimezone(UTC).date()
    return (
        wanted.operation_type in (None, row["operation_type"])
        and wanted.status in (None, row["status"])
        and (wanted.since is None or day >= wanted.since)
        and (wanted.until is None or day <= wanted.until)
    )


def reference_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    durations = sorted(
        (row["completed_at"] - row["started_at"]).total_seconds()
        for row in rows
        if row["started_at"] is not None and row["completed_at"] is not None
    )
    total = sum(row["total_records"] for row in rows)
    successful = sum(row["successful_records"] for row in rows)
    return {
        "operations": len(rows),
        "completed": sum(row["status"] == "completed" for row in rows),
        "in_progress": sum(row["status"] in ("pending", "processing") for row in rows),
        "failed": sum(row["status"] == "failed" for row in rows),
        "records": total,
        "successful_records": successful,
        "success_rate": round(100 * successful / total, 2) if total else 0.0,
        "median_s": round(statistics.median(durations), 3) if durations else None,
        "p95_s": round(durations[math.ceil(0.95 * len(durations)) - 1], 3) if durations else None,
    }


FILTERS = [
    HistoryFilter(),
    HistoryFilter(operation_type="sync_beds"),
    HistoryFilter(status="failed"),
    HistoryFilter(since=date(2026, 11, 1)),
    HistoryFilter(until=date(2026, 11, 1)),
    HistoryFilter(since=date(2026, 11, 2), until=date(2026, 11, 3), operation_type="import_patients"),
    HistoryFilter(since=date(2026, 11, 2), until=date(2026, 11, 2), status="completed"),
    HistoryFilter(operation_type="export_report", status="pending"),  # no duration at all
    HistoryFilter(since=date(2027, 1, 1)),  # nothing
]


@pytest.mark.parametrize("count", [211, 212])
def test_stats_equal_the_python_reference(database: Database, count: int) -> None:
    """Odd and even numbers of durations, per type and over all, for every kind of filter."""
    rows = varied_operations(count)
    insert_operations(database.engine, rows)
    finished = [row for row in rows if row["started_at"] and row["completed_at"]]
    counts = [len(finished), *(sum(row["operation_type"] == kind for row in finished) for kind in TYPES)]
    assert {count % 2 for count in counts} == {0, 1}
    for wanted in FILTERS:
        assert operation_stats(database.engine, wanted) == reference_stats(rows, wanted), wanted


def test_stats_of_one_finished_operation_and_of_two(database: Database) -> None:
    rows = varied_operations(3)
    for row, seconds in zip(rows, (1.25, 2.5, 100.0), strict=True):
        row.update(operation_type="sync_beds" if seconds < 100 else "export_report", status="completed")
        row.update(started_at=row["created_at"], completed_at=row["created_at"] + timedelta(seconds=seconds))
    insert_operations(database.engine, rows)
    stats = operation_stats(database.engine)
    assert (stats["by_type"]["sync_beds"]["median_s"], stats["by_type"]["sync_beds"]["p95_s"]) == (1.875, 2.5)
    assert (stats["by_type"]["export_report"]["median_s"], stats["by_type"]["export_report"]["p95_s"]) == (
        100.0,
        100.0,
    )
    assert (stats["all"]["median_s"], stats["all"]["p95_s"]) == (2.5, 100.0)


def test_stats_load_no_operation_into_python(database: Database) -> None:
    """The fault of issue 13: every operation became an object. Now the database counts and ranks."""
    insert_operations(database.engine, varied_operations(120))
    loaded: list[object] = []
    statements: list[str] = []

    def on_load(target: object, _context: object) -> None:
        loaded.append(target)

    event.listen(BulkOperation, "load", on_load)
    event.listen(database.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        operation_stats(database.engine)
        assert loaded == []
        # The totals; per type and over all, the duration buckets, then the one or two middle durations
        # and the p95: not one statement per row.
        assert len([sql for sql in statements if sql.startswith("SELECT")]) <= 1 + 4 * (len(TYPES) + 1)
        list_operations(database.engine, HistoryFilter(limit=5))  # the listener does see objects loaded
    finally:
        event.remove(BulkOperation, "load", on_load)
    assert len(loaded) == 5


def all_pages(engine: Any, wanted: HistoryFilter) -> list[list[int]]:
    """Every page of ``wanted``'s list, each from the last id of the one before."""
    pages: list[list[int]] = []
    while True:
        before = pages[-1][-1] if pages else None
        page = [op["id"] for op in list_operations(engine, replace(wanted, before=before))]
        if not page:
            return pages
        pages.append(page)


@pytest.mark.parametrize("wanted", FILTERS[:7], ids=str)
def test_keyset_pages_cover_every_operation_exactly_once(database: Database, wanted: HistoryFilter) -> None:
    rows = varied_operations(212)
    insert_operations(database.engine, rows)
    expected = sorted((n for n, row in enumerate(rows, start=1) if matches(row, wanted)), reverse=True)
    assert len(expected) > 7
    pages = all_pages(database.engine, replace(wanted, limit=7))
    assert [op_id for page in pages for op_id in page] == expected
    assert all(len(page) == 7 for page in pages[:-1]) and 0 < len(pages[-1]) <= 7
    everything = [op["id"] for op in list_operations(database.engine, replace(wanted, limit=1000))]
    assert everything == expected


def test_newest_first_by_id_is_newest_first_by_creation(history: Database) -> None:
    """Ids grow with creation: the order the seed's page had (created_at, then id, descending)."""
    listed = list_operations(history.engine, HistoryFilter())
    assert [op["id"] for op in listed] == [
        op["id"] for op in sorted(listed, key=lambda op: (op["created_at"], op["id"]), reverse=True)
    ]
    assert [op["id"] for op in list_operations(history.engine, HistoryFilter(before=4))] == [3, 2, 1]
    assert list_operations(history.engine, HistoryFilter(before=1)) == []


def next_page_command(stdout: str) -> list[str] | None:
    """The arguments of the `wardbulk ops list` command that the table's last line offers, if any."""
    hints = [line for line in stdout.splitlines() if line.startswith("next page: ")]
    assert len(hints) <= 1 and (not hints or stdout.rstrip().endswith(hints[0]))
    return shlex.split(hints[0].removeprefix("next page: "))[1:] if hints else None


def test_the_list_command_pages_with_before(installed: tuple[Path, dict[str, str]]) -> None:
    cwd, env = installed
    first = run_cli("ops", "list", "--limit", "4", cwd=cwd, env=env)
    assert first.returncode == 0
    assert next_page_command(first.stdout) == ["ops", "list", "--limit", "4", "--before", "3"]
    last = run_cli("ops", "list", "--limit", "4", "--before", "3", cwd=cwd, env=env)
    assert "file2.csv" in last.stdout and "file3.csv" not in last.stdout
    assert next_page_command(last.stdout) is None
    as_json = run_cli("ops", "list", "--limit", "4", "--before", "3", "--json", cwd=cwd, env=env)
    assert [op["id"] for op in json.loads(as_json.stdout)] == [2, 1]
    # Filters carry over to the next page; a page that ends the list offers none.
    imports = run_cli("ops", "list", "--type", "import_patients", "--limit", "2", cwd=cwd, env=env)
    hint = next_page_command(imports.stdout)
    assert hint == ["ops", "list", "--type", "import_patients", "--limit", "2", "--before", "2"]
    assert [op["id"] for op in json.loads(run_cli(*hint, "--json", cwd=cwd, env=env).stdout)] == [1]
    assert next_page_command(run_cli("ops", "list", "--limit", "6", cwd=cwd, env=env).stdout) is None
    assert len(json.loads(run_cli("ops", "list", "--limit", "2", "--json", cwd=cwd, env=env).stdout)) == 2
    assert run_cli("ops", "list", "--before", "0", cwd=cwd, env=env).returncode == 2


def test_the_dashboards_totals_are_the_statistics_without_durations(history: Database) -> None:
    from processor.adapters.database.history import operation_totals

    expected = operation_stats(history.engine)["all"] | {"median_s": None, "p95_s": None}
    assert operation_totals(history.engine) == expected
    assert operation_totals(history.engine)["operations"] > 0

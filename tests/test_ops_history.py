"""Operation history: `ops list` filters, `ops show`, `ops stats` arithmetic, tables and JSON."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

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

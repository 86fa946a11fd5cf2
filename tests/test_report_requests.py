"""Three ways to ask for a report (command, request file, export trigger) and reports on a schedule."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import text as sa_text

from processor.adapters.database.engine import build_engine
from processor.adapters.owners import this_process
from processor.errors import ConfigError
from processor.reports.schedules import period_dates, period_key, run_schedule
from processor.settings import ScheduleSettings, Settings, load_settings
from tests.conftest import Workspace, run_cli


def reports(ws: Workspace) -> list[str]:
    return sorted(p.name for p in (ws.outbox / "reports").glob("*.csv"))


def test_a_request_file_writes_one_report_per_valid_row_and_reports_the_bad_ones(
    workspace: Workspace,
) -> None:
    workspace.drop(
        "export_report",
        "requests.csv",
        "report_type,start_date,end_date,ward\n"
        "occupancy,,,\n"
        "patient_list,,,CARD\n"
        "nonsense,,,\n"
        "bed_utilization,2026-11-30,2026-11-01,\n"
        "admission_discharge,01/11/2026,,\n"
        "occupancy,,,NOWARD\n",
    )
    workspace.run_once()
    summary = workspace.summary("export_report", "requests", 1)
    assert (summary["status"], summary["successful_records"], summary["failed_records"]) == (
        "completed",
        2,
        4,
    )
    errors = workspace.rows("export_report", "requests", 1, "errors.csv")
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [
        ("4", "report_type", "constraint-error"),
        ("5", "end_date", "constraint-error"),
        ("6", "start_date", "type-error"),
        ("7", "ward", "unknown-ward"),
    ]
    results = workspace.rows("export_report", "requests", 1, "result.csv")
    files = [r["report_file"] for r in results if r["outcome"] == "ok"]
    assert len(files) == 2 and all((workspace.outbox / "reports" / name).is_file() for name in files)
    assert "occupancy-latest.csv" in reports(workspace) and "patient_list-CARD-latest.csv" in reports(
        workspace
    )
    assert workspace.scalar("SELECT operation_type FROM bulk_operations") == "export_report"


def test_any_file_in_export_patients_asks_for_the_patient_export_every_time(workspace: Workspace) -> None:
    """Content ignored: a .txt, an empty file, the same bytes twice (a trigger is not a duplicate)."""
    workspace.drop(
        "import_patients", "p.csv", "first_name,last_name,email,patient_id\nA,A,a@example.org,001\n"
    )
    workspace.run_once()
    workspace.drop("export_patients", "go.txt", "")
    workspace.run_once()
    workspace.drop("export_patients", "go-again.txt", "")
    workspace.run_once()
    exports = [name for name in reports(workspace) if name.startswith("export_patients-2")]
    assert len(exports) == 2
    summaries = sorted((workspace.outbox / "export_patients").glob("*.summary.json"))
    assert [json.loads(s.read_text())["status"] for s in summaries] == ["completed", "completed"]
    assert json.loads(summaries[0].read_text())["total_records"] == 1
    with (workspace.outbox / "reports" / "export_patients-latest.csv").open(encoding="utf-8-sig") as handle:
        assert [row["patient_id"] for row in csv.DictReader(handle)] == ["001"]
    assert (
        workspace.scalar("SELECT count(*) FROM bulk_operations WHERE operation_type = 'export_patients'") == 2
    )


def test_the_report_command_writes_to_the_outbox_to_a_file_or_to_stdout(
    tmp_path: Path, empty_database_url: str
) -> None:
    env = {"WARDBULK_DATABASE_URL": empty_database_url}
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    to_outbox = run_cli("report", "occupancy", cwd=tmp_path, env=env)
    assert to_outbox.returncode == 0, to_outbox.stderr
    assert "rows written to outbox/reports/occupancy-" in to_outbox.stdout
    latest = (tmp_path / "outbox" / "reports" / "occupancy-latest.csv").read_bytes()
    assert latest.startswith(b"\xef\xbb\xbf") and b"TOTAL,,30,0,27,3,0.0" in latest
    to_stdout = run_cli("report", "occupancy", "--ward", "PAED", "-o", "-", cwd=tmp_path, env=env)
    assert list(csv.reader(io.StringIO(to_stdout.stdout)))[1] == [
        "PAED",
        "Paediatrics",
        "8",
        "0",
        "6",
        "2",
        "0.0",
    ]
    to_file = run_cli(
        "report",
        "bed_utilization",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-07",
        "-o",
        str(tmp_path / "beds.csv"),
        cwd=tmp_path,
        env=env,
    )
    assert (
        to_file.returncode == 0 and (tmp_path / "beds.csv").read_text(encoding="utf-8-sig").count("\n") == 31
    )
    engine = build_engine(empty_database_url)
    with engine.connect() as connection:
        recorded = connection.execute(
            sa_text(
                "SELECT operation_type, status, total_records, output_file FROM bulk_operations ORDER BY id"
            )
        ).all()
    engine.dispose()
    assert [(r[0], r[1], r[2]) for r in recorded] == [
        ("export_report", "completed", 4),
        ("export_report", "completed", 2),
        ("export_report", "completed", 30),
    ]
    assert [r[3] for r in recorded][1:] == ["-", str(tmp_path / "beds.csv")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ward", "NOPE"], "unknown ward 'NOPE'"),
        (["--from", "2026-11-10", "--to", "2026-11-01"], "the end date is before the start date"),
        (["--from", "10/11/2026"], "Invalid value for '--from'"),
    ],
)
def test_a_bad_report_request_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    assert run_cli("init", "--demo", cwd=tmp_path).returncode == 0
    result = run_cli("report", "patient_list", *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


# --- schedules ---


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "wardbulk.toml"
    path.write_text(body)
    return path


def test_the_interval_form_of_a_schedule(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, '[[schedules]]\nreport = "occupancy"\nevery = "1s"\n'))
    [schedule] = settings.schedules
    assert (schedule.report, schedule.every, schedule.cron) == ("occupancy", "1s", None)


def test_a_crontab_with_weekday_names_fires_on_weekdays_only() -> None:
    """APScheduler 3 numbers weekdays from Monday; names mean what they say."""
    trigger = CronTrigger.from_crontab("0 6 * * mon-fri", timezone=UTC)
    saturday = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, saturday) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    friday_night = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, friday_night) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('report = "occupancy"\ncron = "0 6 * * 1-5"', "write weekdays as names"),
        ('report = "occupancy"\nevery = "soon"', "an interval is a number and s, m or h"),
        ('report = "occupancy"\nevery = "0s"', "an interval is a number"),
        ('report = "occupancy"', "give exactly one of every and cron"),
        ('report = "occupancy"\nevery = "1h"\ncron = "0 6 * * *"', "give exactly one of every and cron"),
        ('report = "census"\nevery = "1h"', "schedules.0.report"),
        ('report = "occupancy"\nevery = "1h"\nperiod = "fortnight"', "schedules.0.period"),
        ('report = "occupancy"\ncron = "0 6 * *"', "a crontab has 5 fields"),
    ],
)
def test_a_bad_schedule_is_a_configuration_error(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(write_config(tmp_path, f"[[schedules]]\n{body}\n"))


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("yesterday", (date(2026, 11, 25), date(2026, 11, 25))),
        ("last_7_days", (date(2026, 11, 19), date(2026, 11, 25))),
        ("last_30_days", (date(2026, 10, 27), date(2026, 11, 25))),
        ("month_to_date", (date(2026, 11, 1), date(2026, 11, 26))),
        (None, (None, None)),
    ],
)
def test_schedule_periods(period: str | None, expected: tuple[object, object]) -> None:
    assert period_dates(period, date(2026, 11, 26)) == expected


def test_period_keys_are_interval_slots_or_the_minute_a_crontab_fired() -> None:
    every = ScheduleSettings(report="occupancy", every="15m")
    cron = ScheduleSettings(report="occupancy", cron="0 6 * * mon-fri")
    assert period_key(every, datetime(2026, 11, 26, 6, 14, tzinfo=UTC)) == period_key(
        every, datetime(2026, 11, 26, 6, 1, tzinfo=UTC)
    )
    assert period_key(every, datetime(2026, 11, 26, 6, 16, tzinfo=UTC)) != period_key(
        every, datetime(2026, 11, 26, 6, 14, tzinfo=UTC)
    )
    assert period_key(cron, datetime(2026, 11, 26, 6, 0, 0, 400_000, tzinfo=UTC)) == "2026-11-26T06:00Z"


def test_one_report_per_period_however_many_daemons_fire(workspace: Workspace) -> None:
    """Four firings of the same period at once (as four daemons would) write one report."""
    schedule = ScheduleSettings(report="occupancy", every="1h", name="hourly-occupancy")
    fixed = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    outcomes: list[object] = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(
                run_schedule(
                    workspace.database.engine, workspace.outbox, lambda: fixed, schedule, this_process()
                )
            )
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(outcome is not None for outcome in outcomes) == 1
    assert [name for name in reports(workspace) if name != "occupancy-latest.csv"] == [
        "occupancy-20261126T103000Z-op1.csv"
    ]
    assert workspace.scalar("SELECT count(*) FROM scheduled_runs") == 1
    assert workspace.scalar("SELECT output_file FROM scheduled_runs").endswith(
        "occupancy-20261126T103000Z-op1.csv"
    )
    assert (
        workspace.scalar("SELECT u.username FROM bulk_operations o JOIN users u ON u.id = o.initiated_by_id")
        == "scheduler"
    )


def test_a_new_period_gets_a_new_report(workspace: Workspace) -> None:
    schedule = ScheduleSettings(report="occupancy", every="1h")
    for hour in (10, 10, 11):
        run_schedule(
            workspace.database.engine,
            workspace.outbox,
            lambda h=hour: datetime(2026, 11, 26, h, 5, tzinfo=UTC),
            schedule,
            this_process(),
        )
    assert workspace.scalar("SELECT count(*) FROM scheduled_runs") == 2
    assert workspace.scalar("SELECT count(*) FROM bulk_operations") == 2


def test_settings_without_schedules_schedule_nothing() -> None:
    assert Settings().schedules == []

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
        ('report = "occupancy"\ncron = "61 6 * * *"', "not a valid crontab"),
        ('report = "occupancy"\ncron = "0 6 * * sun-sat"', "not a valid crontab"),
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


def at(hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 11, 26, hour, minute, second, micro, tzinfo=UTC)


def test_an_interval_run_belongs_to_the_nearest_slot_it_was_due_in() -> None:
    """Interval triggers fire on multiples of the interval; a run a little late keeps its slot."""
    every = ScheduleSettings(report="occupancy", every="15m")
    assert period_key(every, at(6, 0, 0, 400_000)) == period_key(every, at(6, 7))
    assert period_key(every, at(6, 14)) == period_key(every, at(6, 15))
    assert period_key(every, at(6, 14)) != period_key(every, at(6, 0))


def test_a_crontab_run_is_keyed_by_when_it_was_due_even_when_it_starts_late() -> None:
    cron = ScheduleSettings(report="occupancy", cron="0 6 * * mon-fri")
    assert period_key(cron, at(6, 0, 0, 400_000)) == "2026-11-26T06:00Z"
    assert period_key(cron, at(6, 3)) == "2026-11-26T06:00Z"


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


def test_a_failed_scheduled_report_releases_its_period_and_is_retried(workspace: Workspace) -> None:
    """Writing fails twice (the outbox is unusable), then works: one report, one claim, nothing lost."""
    blocked = workspace.root / "blocked-outbox"
    blocked.write_text("not a folder")
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            blocked.unlink()

    schedule = ScheduleSettings(report="occupancy", every="1h")
    outcome = run_schedule(
        workspace.database.engine, blocked, lambda: at(10, 0), schedule, this_process(), pause
    )
    assert outcome is not None and len(pauses) == 2
    assert workspace.scalar("SELECT count(*) FROM scheduled_runs") == 1
    assert workspace.scalar("SELECT count(*) FROM bulk_operations WHERE status = 'failed'") == 2


def test_a_scheduled_report_for_an_unknown_ward_fails_visibly(workspace: Workspace) -> None:
    schedule = ScheduleSettings(report="occupancy", every="1h", ward="NOPE")
    with pytest.raises(ValueError, match="unknown ward 'NOPE'"):
        run_schedule(workspace.database.engine, workspace.outbox, lambda: at(10, 0), schedule, this_process())
    assert workspace.scalar("SELECT count(*) FROM scheduled_runs") == 0


def test_a_scheduled_report_in_progress_is_not_taken_over_by_this_process_s_recovery(
    workspace: Workspace,
) -> None:
    """Reports run in the scheduler thread while the main thread recovers leftovers every rescan."""
    from processor.recovery import recover

    seen: list[object] = []

    def clock() -> datetime:
        seen.append(recover(workspace.pipeline()))  # recovery runs while the report is being written
        return datetime.now(UTC)

    schedule = ScheduleSettings(report="occupancy", every="1h")
    outcome = run_schedule(workspace.database.engine, workspace.outbox, clock, schedule, this_process())
    assert outcome is not None
    assert workspace.scalar("SELECT status FROM bulk_operations") == "completed"
    assert all(found == [] for found in seen)


def test_bed_utilization_never_exceeds_the_whole_period(workspace: Workspace) -> None:
    """Overlapping stays on one bed (a backdated admission) count once."""
    from processor.core.report_request import ReportRequest, ReportType
    from processor.reports.queries import build_report

    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,patient_id\nA,A,a@example.org,001\nB,B,b@example.org,002\n",
    )
    workspace.run_once()
    with workspace.database.engine.begin() as connection:
        for mrn, admitted, active in (
            ("001", "2026-11-01 00:00:00", False),
            ("002", "2026-11-05 00:00:00", True),
        ):
            connection.execute(
                sa_text(
                    "INSERT INTO patient_admissions (patient_id, bed_id, admitted_at, reason, is_active, created_at) "
                    f"SELECT p.id, b.id, '{admitted}', 'r', {'true' if active else 'false'}, '{admitted}' "
                    f"FROM patients p, ward_beds b WHERE p.mrn = '{mrn}' AND b.code = 'CARD-01'"
                )
            )
        connection.execute(
            sa_text(
                "INSERT INTO patient_discharges (admission_id, patient_id, discharged_at, discharge_status, created_at) "
                "SELECT a.id, a.patient_id, '2026-11-20 00:00:00', 'other', '2026-11-20 00:00:00' "
                "FROM patient_admissions a JOIN patients p ON p.id = a.patient_id WHERE p.mrn = '001'"
            )
        )
    request = ReportRequest(ReportType.BED_UTILIZATION, "CARD", date(2026, 11, 1), date(2026, 11, 20))
    with workspace.database.engine.connect() as connection:
        table = build_report(connection, request, at(12, 0))
    card01 = next(row for row in table.rows if row[2] == "CARD-01")
    assert card01[7:9] == [20.0, 100.0]

"""Local time (issue 15, item 5): schedules, report periods and days, and the history's day filters follow
``timezone``; stored times stay UTC. Across both clock changes of a zone with daylight saving time
(Europe/Amsterdam 2026: 29 March 02:00 -> 03:00, 25 October 03:00 -> 02:00) and in zones far from UTC
(America/Los_Angeles 2026: 8 March, 1 November; Pacific/Auckland, +13 in October)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select, text

from processor.adapters.database.engine import build_engine
from processor.adapters.database.history import (
    HistoryFilter,
    _split_days,
    count_operations,
    list_operations,
    operation_stats,
)
from processor.adapters.database.migrations import upgrade_to_head
from processor.adapters.database.models import (
    BulkOperation,
    Patient,
    PatientAdmission,
    PatientDischarge,
    User,
    Ward,
    WardBed,
)
from processor.adapters.owners import this_process
from processor.adapters.scheduler import LocalCronTrigger, add_report_job, build_scheduler
from processor.core.clock import day_range, day_start
from processor.core.report_request import ReportRequest, ReportType
from processor.reports.dashboard import refresh_dashboard
from processor.reports.queries import build_report
from processor.reports.schedules import period_key, run_schedule
from processor.settings import ScheduleSettings
from tests.conftest import Database, make_workspace, run_cli
from tests.test_ops_history import reference_totals, varied_operations

AMS = ZoneInfo("Europe/Amsterdam")
LA = ZoneInfo("America/Los_Angeles")
AKL = ZoneInfo("Pacific/Auckland")
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)  # Amsterdam's 23- and 25-hour days
LA_AUTUMN = date(2026, 11, 1)  # Los Angeles' 25-hour day


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(trigger: LocalCronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time from ``start`` to ``end``, as the scheduler asks for them one after another."""
    found: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        assert not found or fire > found[-1], "fire times must strictly increase"
        found.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return found


# --- Schedules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "crontab", "start", "expected"),
    [
        (  # 06:00 local on weekdays: 05:00Z in winter, 04:00Z in summer
            AMS,
            "0 6 * * mon-fri",
            utc("2026-03-26T12:00"),
            ["2026-03-27T05:00", "2026-03-30T04:00", "2026-03-31T04:00"],
        ),
        (
            AMS,
            "0 6 * * mon-fri",
            utc("2026-10-22T12:00"),
            ["2026-10-23T04:00", "2026-10-26T05:00", "2026-10-27T05:00"],
        ),
        (
            LA,
            "0 6 * * *",
            utc("2026-03-07T00:00"),
            ["2026-03-07T14:00", "2026-03-08T13:00", "2026-03-09T13:00"],
        ),
        (
            LA,
            "0 6 * * *",
            utc("2026-10-31T00:00"),
            ["2026-10-31T13:00", "2026-11-01T14:00", "2026-11-02T14:00"],
        ),
        (
            AKL,
            "0 6 * * *",
            utc("2026-04-03T00:00"),
            ["2026-04-03T17:00", "2026-04-04T18:00", "2026-04-05T18:00"],
        ),
    ],
)
def test_a_crontab_fires_at_local_wall_time_across_clock_changes(
    zone: tzinfo, crontab: str, start: datetime, expected: list[str]
) -> None:
    found = fires(LocalCronTrigger(crontab, zone), start, start + timedelta(days=5))[:3]
    assert found == [utc(text) for text in expected]
    assert {fire.astimezone(zone).strftime("%H:%M") for fire in found} == {"06:00"}


@pytest.mark.parametrize("zone", [AMS, LA])
@pytest.mark.parametrize("crontab", ["30 2 * * *", "0 2 * * *", "30 1 * * *", "0 3 * * *"])
def test_a_daily_crontab_fires_once_every_local_day_even_in_a_skipped_or_repeated_hour(
    zone: tzinfo, crontab: str
) -> None:
    for change in (SPRING, AUTUMN) if zone is AMS else (date(2026, 3, 8), LA_AUTUMN):
        first, last = change - timedelta(days=2), change + timedelta(days=2)
        start, end = day_range(first, last, zone)
        assert start is not None and end is not None
        days = Counter(
            fire.astimezone(zone).date() for fire in fires(LocalCronTrigger(crontab, zone), start, end)
        )
        assert days == {first + timedelta(days=n): 1 for n in range(5)}


def test_a_time_the_clock_skips_fires_as_if_it_had_not_yet_changed() -> None:
    (spring,) = [f for f in fires(LocalCronTrigger("30 2 * * *", AMS), *_day(SPRING, AMS))]
    assert spring == utc("2026-03-29T01:30")  # 03:30 summer time
    (autumn,) = [f for f in fires(LocalCronTrigger("30 2 * * *", AMS), *_day(AUTUMN, AMS))]
    assert autumn == utc("2026-10-25T00:30")  # the first 02:30 (summer time), not the second as well


def _day(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    start, end = day_range(day, day, zone)
    assert start is not None and end is not None
    return start, end


@pytest.mark.parametrize(("crontab", "spring", "autumn"), [("0 * * * *", 23, 25), ("*/30 * * * *", 46, 50)])
def test_an_every_hour_crontab_fires_in_every_real_hour(crontab: str, spring: int, autumn: int) -> None:
    """The 23-hour day has 23 hourly firings, the 25-hour day 25: the repeated hour is an hour too."""
    trigger = LocalCronTrigger(crontab, AMS)
    assert len(fires(trigger, *_day(SPRING, AMS))) == spring
    autumn_fires = fires(trigger, *_day(AUTUMN, AMS))
    assert len(autumn_fires) == autumn
    assert utc("2026-10-25T00:00") in autumn_fires and utc("2026-10-25T01:00") in autumn_fires  # 02:00 twice


@pytest.mark.parametrize("crontab", ["30 2 * * *", "0 * * * *", "*/30 * * * *", "0 6 * * mon-fri"])
@pytest.mark.parametrize("zone", [AMS, LA])
def test_period_keys_are_one_per_firing_none_shared_none_lost(crontab: str, zone: tzinfo) -> None:
    """Each firing, on time or up to 20 minutes late, keys its own period; no key stands for two."""
    schedule = ScheduleSettings(report="occupancy", cron=crontab)
    trigger = LocalCronTrigger(crontab, zone)
    changes = (SPRING, AUTUMN) if zone is AMS else (date(2026, 3, 8), LA_AUTUMN)
    for change in changes:
        start, end = day_range(change - timedelta(days=1), change + timedelta(days=1), zone)
        assert start is not None and end is not None
        found = fires(trigger, start, end)
        keys = [period_key(schedule, fire, zone) for fire in found]
        assert keys == [fire.strftime("%Y-%m-%dT%H:%MZ") for fire in found]  # the due time, in UTC
        assert len(set(keys)) == len(found)
        late = min([timedelta(minutes=20), *(b - a - timedelta(minutes=1) for a, b in pairwise(found))])
        assert [period_key(schedule, fire + late, zone) for fire in found] == keys


def test_a_daily_run_again_in_the_repeated_hour_is_the_same_period() -> None:
    """Whoever fires "30 2 * * *" again at the second 02:30 (a restarted daemon) finds the period taken."""
    daily = ScheduleSettings(report="occupancy", cron="30 2 * * *")
    first, second = utc("2026-10-25T00:30"), utc("2026-10-25T01:30")  # both 02:30 in Amsterdam
    assert period_key(daily, second, AMS) == period_key(daily, first, AMS) == "2026-10-25T00:30Z"


def test_the_daemon_s_report_job_uses_the_local_trigger() -> None:
    scheduler = build_scheduler()
    add_report_job(scheduler, "report", lambda: None, None, "0 6 * * *", AMS)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job("report")
        assert isinstance(job.trigger, LocalCronTrigger)
        assert job.next_run_time.astimezone(AMS).strftime("%H:%M") == "06:00"
    finally:
        scheduler.shutdown(wait=False)


# --- Reports -------------------------------------------------------------------------------------

# Discharges at the edges of the local days (the edges of the 23- and 25-hour days in Amsterdam).
EDGES: dict[tuple[tzinfo, date], tuple[str, str]] = {
    (AMS, SPRING): ("2026-03-28T23:00", "2026-03-29T22:00"),
    (AMS, AUTUMN): ("2026-10-24T22:00", "2026-10-25T23:00"),
    (LA, LA_AUTUMN): ("2026-11-01T07:00", "2026-11-02T08:00"),
}


def discharge_times() -> list[datetime]:
    """Just before, at, just inside the end of, and at the end of each local day of EDGES."""
    times = []
    for begin, end in EDGES.values():
        tick = timedelta(seconds=1)
        times += [utc(begin) - tick, utc(begin), utc(end) - tick, utc(end)]
    return times


def seed_stays(engine: Engine, discharges: list[datetime], stay: timedelta = timedelta(hours=30)) -> None:
    """Ward TZ with one bed; one patient per discharge, admitted ``stay`` before it."""
    moment = utc("2026-01-01T00:00")
    with engine.begin() as c:
        ward = c.execute(
            insert(Ward).returning(Ward.id),
            {"code": "TZ", "name": "Zone", "is_active": True, "created_at": moment},
        ).scalar_one()
        bed = c.execute(
            insert(WardBed).returning(WardBed.id),
            {"code": "TZ-1", "ward_id": ward, "bed_number": "1", "status": "available", "updated_at": moment},
        ).scalar_one()
        for n, discharged in enumerate(discharges, start=1):
            user = c.execute(
                insert(User).returning(User.id),
                {
                    "username": f"tz{n}",
                    "email": f"tz{n}@example.org",
                    "first_name": "T",
                    "last_name": f"Z{n}",
                    "created_at": moment,
                },
            ).scalar_one()
            patient = c.execute(
                insert(Patient).returning(Patient.id),
                {"user_id": user, "mrn": f"TZ{n:02d}", "created_at": moment},
            ).scalar_one()
            admission = c.execute(
                insert(PatientAdmission).returning(PatientAdmission.id),
                {
                    "patient_id": patient,
                    "bed_id": bed,
                    "admitted_at": discharged - stay,
                    "reason": "r",
                    "is_active": False,
                    "created_at": moment,
                },
            ).scalar_one()
            c.execute(
                insert(PatientDischarge),
                {
                    "admission_id": admission,
                    "patient_id": patient,
                    "discharged_at": discharged,
                    "discharge_status": "recovered",
                    "created_at": moment,
                },
            )


def discharged_in(engine: Engine, day: date, zone: tzinfo, now: datetime) -> list[list[Any]]:
    request = ReportRequest(ReportType.ADMISSION_DISCHARGE, "TZ", day, day)
    with engine.connect() as connection:
        return build_report(connection, request, now, zone).rows


NOW = utc("2026-11-26T12:00")


@pytest.mark.parametrize(("zone", "day"), list(EDGES))
def test_a_report_day_is_the_local_day_23_or_25_hours_long(
    database: Database, zone: tzinfo, day: date
) -> None:
    seed_stays(database.engine, discharge_times())
    begin, end = EDGES[(zone, day)]
    assert day_range(day, day, zone) == (utc(begin), utc(end))
    rows = discharged_in(database.engine, day, zone, NOW)
    shown = [datetime.fromisoformat(row[0]) for row in rows]
    assert shown == [utc(begin), utc(end) - timedelta(seconds=1)]  # the day's first and last second only
    assert [value.astimezone(zone).date() for value in shown] == [day, day]
    assert all(
        row[0].endswith(datetime.fromisoformat(row[0]).astimezone(zone).strftime("%z")[:3] + ":00")
        for row in rows
    )  # shown as local times, with their offset
    # the same request on UTC days covers other instants
    assert [datetime.fromisoformat(row[0]) for row in discharged_in(database.engine, day, UTC, NOW)] != shown


def test_under_utc_reports_show_utc_and_utc_days(database: Database) -> None:
    seed_stays(database.engine, discharge_times())
    rows = discharged_in(database.engine, SPRING, ZoneInfo("UTC"), NOW)
    assert [row[0] for row in rows] == ["2026-03-29T21:59:59+00:00", "2026-03-29T22:00:00+00:00"]
    assert rows == discharged_in(database.engine, SPRING, UTC, NOW)


def test_length_of_stay_counts_local_calendar_days(database: Database) -> None:
    seed_stays(database.engine, [utc("2026-03-28T23:00")])  # admitted 27 Mar 17:00Z (18:00 local)
    (row,) = discharged_in(database.engine, SPRING, AMS, NOW)
    assert (row[5], row[6]) == ("2026-03-27T18:00:00+01:00", 2)  # 27 Mar -> 29 Mar local
    (utc_row,) = discharged_in(database.engine, date(2026, 3, 28), UTC, NOW)
    assert utc_row[6] == 1  # 27 Mar -> 28 Mar in UTC


@pytest.mark.parametrize(("zone", "day"), list(EDGES))
def test_a_bed_used_all_of_a_short_or_long_local_day_is_used_one_day(
    database: Database, zone: tzinfo, day: date
) -> None:
    seed_stays(database.engine, [day_start(day + timedelta(days=1), zone)], stay=timedelta(days=3))
    for first, last, days in ((day, day, 1.0), (day - timedelta(days=1), day, 2.0)):
        request = ReportRequest(ReportType.BED_UTILIZATION, "TZ", first, last)
        with database.engine.connect() as connection:
            (row,) = build_report(connection, request, NOW, zone).rows
        assert row[7:] == [days, 100.0, first.isoformat(), last.isoformat()]


def test_yesterday_at_half_past_midnight_local_is_the_local_yesterday(
    tmp_path: Path, database: Database
) -> None:
    """A schedule run at 00:30 local (22:30Z the day before) reports the local yesterday, 23 hours long;
    the operation, its file name and its period key stay UTC."""
    workspace = make_workspace(tmp_path, database, timezone="Europe/Amsterdam")
    seed_stays(database.engine, discharge_times())
    schedule = ScheduleSettings(
        report="admission_discharge", ward="TZ", cron="30 0 * * *", period="yesterday"
    )
    fired = utc("2026-03-29T22:30")  # 30 March 00:30 CEST
    outcome = run_schedule(
        database.engine,
        workspace.outbox,
        lambda: fired,
        schedule,
        this_process(),
        zone=workspace.settings.zone(),
    )
    assert outcome is not None and outcome.rows == 2
    assert (
        Path(outcome.output).name == f"admission_discharge-TZ-20260329T223000Z-op{outcome.operation_id}.csv"
    )
    lines = Path(outcome.output).read_text(encoding="utf-8-sig").splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-29T23:59:59+02:00",
    ]
    assert workspace.scalar("SELECT period_key FROM scheduled_runs") == "2026-03-29T22:30Z"
    assert_stored_utc(database.engine, fired)


def test_yesterday_in_los_angeles_is_its_25_hour_day(tmp_path: Path, database: Database) -> None:
    workspace = make_workspace(tmp_path, database, timezone="America/Los_Angeles")
    seed_stays(database.engine, discharge_times())
    schedule = ScheduleSettings(
        report="admission_discharge", ward="TZ", cron="30 0 * * *", period="yesterday"
    )
    fired = utc("2026-11-02T08:30")  # 2 November 00:30 PST
    outcome = run_schedule(
        database.engine, workspace.outbox, lambda: fired, schedule, this_process(), zone=LA
    )
    assert outcome is not None and outcome.rows == 2
    lines = Path(outcome.output).read_text(encoding="utf-8-sig").splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == [
        "2026-11-01T00:00:00-07:00",
        "2026-11-01T23:59:59-08:00",
    ]


def assert_stored_utc(engine: Engine, moment: datetime) -> None:
    """The operation's stored creation time is ``moment`` as UTC: on SQLite the naive UTC text, on
    PostgreSQL an instant whose UTC reading is ``moment``."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            stored = connection.execute(text("SELECT created_at FROM bulk_operations")).scalar_one()
            assert str(stored).startswith(moment.strftime("%Y-%m-%d %H:%M:%S"))
        else:
            stored = connection.execute(
                text(
                    "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM bulk_operations"
                )
            ).scalar_one()
            assert stored == moment.strftime("%Y-%m-%d %H:%M:%S")
        assert connection.execute(select(BulkOperation.created_at)).scalar_one() == moment


def test_a_request_file_asks_for_local_days(tmp_path: Path, database: Database) -> None:
    """export_report (the pipeline's report store) reads a request's dates as local days."""
    workspace = make_workspace(tmp_path, database, timezone="Europe/Amsterdam")
    seed_stays(database.engine, discharge_times())
    workspace.drop(
        "export_report",
        "r.csv",
        "report_type,start_date,end_date,ward\nadmission_discharge,2026-10-25,2026-10-25,TZ\n",
    )
    workspace.run_once()
    (result,) = workspace.rows("export_report", "r", 1, "result.csv")
    report = (workspace.outbox / "reports" / result["report_file"]).read_text(encoding="utf-8-sig")
    assert [line.split(",")[0] for line in report.splitlines()[1:]] == [
        "2026-10-25T00:00:00+02:00",
        "2026-10-25T23:59:59+01:00",
    ]


@pytest.fixture
def installed(tmp_path: Path, empty_database_url: str) -> tuple[Path, str]:
    engine = build_engine(empty_database_url)
    upgrade_to_head(engine)
    seed_stays(engine, discharge_times())
    insert_at(engine, [utc(t) for t in OPERATION_TIMES])
    engine.dispose()
    return tmp_path, empty_database_url


def test_the_report_command_reads_local_days(installed: tuple[Path, str]) -> None:
    cwd, url = installed
    env = {"WARDBULK_DATABASE_URL": url, "WARDBULK_TIMEZONE": "Europe/Amsterdam"}
    done = run_cli(
        "report",
        "admission_discharge",
        "--from",
        "2026-03-29",
        "--to",
        "2026-03-29",
        "-o",
        "-",
        cwd=cwd,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert [line.split(",")[0] for line in done.stdout.splitlines()[1:]] == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-29T23:59:59+02:00",
    ]


# --- The history -------------------------------------------------------------------------------------

# Operations at the edges of the local days of EDGES, in id order.
OPERATION_TIMES = [
    "2026-03-28T22:59:59.999999",  # 1: 28 Mar 23:59:59.999999 in Amsterdam
    "2026-03-28T23:00",  # 2: 29 Mar 00:00
    "2026-03-29T21:59:59.999999",  # 3: 29 Mar 23:59:59.999999 (summer time)
    "2026-03-29T22:00",  # 4: 30 Mar 00:00
    "2026-10-24T21:59:59",  # 5: 24 Oct 23:59:59
    "2026-10-24T22:00",  # 6: 25 Oct 00:00 (summer time)
    "2026-10-25T22:59:59",  # 7: 25 Oct 23:59:59 (winter time)
    "2026-10-25T23:00",  # 8: 26 Oct 00:00
    "2026-11-01T06:59:59",  # 9: 31 Oct 23:59:59 in Los Angeles
    "2026-11-01T07:00",  # 10: 1 Nov 00:00 (daylight time)
    "2026-11-02T07:59:59",  # 11: 1 Nov 23:59:59 (standard time)
    "2026-11-02T08:00",  # 12: 2 Nov 00:00
]


def insert_at(engine: Engine, times: list[datetime]) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(BulkOperation),
            [
                {
                    "operation_type": "import_patients",
                    "status": "completed",
                    "created_at": moment,
                    "started_at": moment,
                    "completed_at": moment + timedelta(seconds=n),
                    "input_file": f"f{n}.csv",
                    "total_records": 10,
                    "successful_records": 9,
                }
                for n, moment in enumerate(times, start=1)
            ],
        )


@pytest.mark.parametrize(
    ("zone", "since", "until", "ids"),
    [
        ("Europe/Amsterdam", "2026-03-29", "2026-03-29", [3, 2]),
        ("Europe/Amsterdam", "2026-10-25", "2026-10-25", [7, 6]),
        ("Europe/Amsterdam", "2026-03-30", "2026-10-24", [5, 4]),
        ("America/Los_Angeles", "2026-11-01", "2026-11-01", [11, 10]),
        ("UTC", "2026-03-29", "2026-03-29", [4, 3]),
    ],
)
def test_ops_list_and_stats_take_local_days(
    installed: tuple[Path, str], zone: str, since: str, until: str, ids: list[int]
) -> None:
    cwd, url = installed
    env = {"WARDBULK_DATABASE_URL": url, "WARDBULK_TIMEZONE": zone}
    days = ["--since", since, "--until", until]
    listed = run_cli("ops", "list", "--json", *days, cwd=cwd, env=env)
    assert listed.returncode == 0, listed.stderr
    operations = json.loads(listed.stdout)
    assert [op["id"] for op in operations] == ids
    assert all(op["created_at"].endswith("+00:00") for op in operations)  # JSON keeps the stored UTC
    stats = json.loads(run_cli("ops", "stats", "--json", *days, cwd=cwd, env=env).stdout)
    assert (stats["all"]["operations"], stats["all"]["records"]) == (len(ids), 10 * len(ids))
    table = run_cli("ops", "list", *days, cwd=cwd, env=env).stdout
    first = datetime.fromisoformat(operations[-1]["created_at"]).astimezone(ZoneInfo(zone))
    assert first.strftime("%Y-%m-%dT%H:%M:%S") in table  # the table shows local times
    assert ("created (" in table) == (zone != "UTC")


def local_matches(row: dict[str, Any], wanted: HistoryFilter) -> bool:
    day = row["created_at"].astimezone(wanted.zone).date()
    return (
        wanted.operation_type in (None, row["operation_type"])
        and wanted.status in (None, row["status"])
        and (wanted.since is None or day >= wanted.since)
        and (wanted.until is None or day <= wanted.until)
    )


def spread_operations() -> list[dict[str, Any]]:
    """varied_operations moved to one every 70 minutes from 23 October: over both zones' autumn changes."""
    rows = varied_operations(240)
    base = utc("2026-10-23T20:00")
    moved = []
    for n, row in enumerate(rows):
        shift = (
            base + timedelta(minutes=70 * n, microseconds=row["created_at"].microsecond) - row["created_at"]
        )
        moved.append(
            {key: (value + shift if isinstance(value, datetime) else value) for key, value in row.items()}
        )
    return moved


LOCAL_FILTERS = [
    HistoryFilter(since=AUTUMN, until=AUTUMN),
    HistoryFilter(since=date(2026, 10, 24), until=date(2026, 10, 27)),
    HistoryFilter(since=AUTUMN),
    HistoryFilter(until=AUTUMN),
    HistoryFilter(since=date(2026, 10, 26), until=date(2026, 11, 2), operation_type="import_patients"),
    HistoryFilter(since=LA_AUTUMN, until=LA_AUTUMN, status="completed"),
    HistoryFilter(since=date(2026, 10, 24), until=date(2026, 10, 24), status="failed"),
]


@pytest.mark.parametrize("zone", [AMS, LA, AKL, UTC])
def test_stats_and_lists_on_local_days_equal_the_python_reference(database: Database, zone: tzinfo) -> None:
    """Tallies of whole UTC days plus the edge hours from the rows: exactly what counting every row gives."""
    rows = spread_operations()
    with database.engine.begin() as connection:
        connection.execute(insert(BulkOperation), rows)
    for local in LOCAL_FILTERS:
        wanted = replace(local, zone=zone, limit=10_000)
        chosen = [row for row in rows if local_matches(row, wanted)]
        stats = operation_stats(database.engine, wanted)
        by_type: dict[str, list[dict[str, Any]]] = {}
        for row in chosen:
            by_type.setdefault(row["operation_type"], []).append(row)
        assert stats == {
            "all": reference_totals(chosen),
            "by_type": {kind: reference_totals(of) for kind, of in sorted(by_type.items())},
        }, wanted
        assert count_operations(database.engine, wanted) == len(chosen)
        listed = [op["input_file"] for op in list_operations(database.engine, wanted)]
        assert listed == [row["input_file"] for row in reversed(chosen)]


def test_in_utc_the_tallies_count_every_day_and_no_row() -> None:
    assert _split_days(HistoryFilter(since=AUTUMN, until=AUTUMN)) == ((AUTUMN, AUTUMN), [])
    days, edges = _split_days(HistoryFilter(since=AUTUMN, until=date(2026, 10, 27), zone=AMS))
    assert days == (AUTUMN, date(2026, 10, 26))  # 25 Oct 00:00Z .. 26 Oct 24:00Z are whole UTC days
    assert edges == [
        (utc("2026-10-24T22:00"), utc("2026-10-25T00:00")),
        (utc("2026-10-27T00:00"), utc("2026-10-27T23:00")),
    ]
    assert _split_days(HistoryFilter(since=AUTUMN, until=AUTUMN, zone=AMS)) == (
        None,
        [(utc("2026-10-24T22:00"), utc("2026-10-25T23:00"))],  # no whole UTC day inside: all from the rows
    )


# --- The dashboard ---------------------------------------------------------------------------------


def test_the_dashboard_shows_local_days(tmp_path: Path, database: Database) -> None:
    insert_at(database.engine, [utc("2026-03-28T23:30")])  # 29 March 00:30 in Amsterdam
    now = utc("2026-03-30T10:00")
    local = refresh_dashboard(database.engine, tmp_path, now, zone=AMS).read_text()
    assert 'data-day="2026-03-29"' in local and "2026-03-29T00:30:00" in local
    assert (
        "2026-03-29: 1 operations" in local
        and f"Generated {now.astimezone(AMS).isoformat(timespec='seconds')}" in local
    )
    in_utc = refresh_dashboard(database.engine, tmp_path, now).read_text()
    assert 'data-day="2026-03-28"' in in_utc and "2026-03-28: 1 operations" in in_utc


def test_a_period_over_both_clock_changes_still_weighs_each_local_day(database: Database) -> None:
    """March to October holds a 23-hour and a 25-hour day: their totals cancel, their days do not."""
    seed_stays(database.engine, [day_start(SPRING + timedelta(days=1), AMS)], stay=timedelta(days=3))

    def used(first: date, last: date) -> Any:
        request = ReportRequest(ReportType.BED_UTILIZATION, "TZ", first, last)
        with database.engine.connect() as connection:
            (row,) = build_report(connection, request, NOW, AMS).rows
        return row[7]

    assert used(date(2026, 3, 1), date(2026, 10, 31)) == used(date(2026, 3, 1), date(2026, 4, 30))
    assert used(SPRING, SPRING) == 1.0


def test_a_wake_up_exactly_at_a_fire_time_asks_for_the_next_one() -> None:
    """APScheduler counts a late start's runs while the next time is not after now: the same time
    again would hold its thread for ever."""
    trigger = LocalCronTrigger("30 2 * * *", AMS)
    fire = trigger.get_next_fire_time(None, utc("2026-10-24T12:00"))
    assert fire is not None
    assert fire == utc("2026-10-25T00:30")  # 02:30 CEST, the first of the two
    assert trigger.get_next_fire_time(fire, fire) == utc("2026-10-26T01:30")  # not the second: once a day
    assert trigger.get_next_fire_time(fire, fire - timedelta(hours=1)) > fire  # a clock set back


def test_the_daemon_runs_its_schedules_on_the_wards_clock(tmp_path: Path, database: Database) -> None:
    """Kathmandu is 5:45 ahead of UTC: its hours begin at a quarter past the UTC hour."""
    from processor.bootstrap import build_daemon

    schedule = {"report": "occupancy", "cron": "0 * * * *"}
    workspace = make_workspace(tmp_path, database, timezone="Asia/Kathmandu", schedules=[schedule])
    build_daemon(workspace.app).companions.scheduled_report(workspace.settings.schedules[0])
    assert str(workspace.scalar("SELECT period_key FROM scheduled_runs")).endswith(":15Z")


def test_a_date_or_time_without_an_offset_in_a_file_is_the_wards_local_time(
    tmp_path: Path, database: Database
) -> None:
    """Los Angeles keeps Pacific time (PDT, UTC-7, from 8 March 2026): an ADT feed's 09:30 is 16:30Z,
    and a day alone is its local midnight; an explicit offset is kept as written."""
    workspace = make_workspace(tmp_path, database, timezone="America/Los_Angeles")
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,patient_id\nA,B,a@example.org,LA1\nC,D,c@example.org,LA2\n"
        "E,F,e@example.org,LA3\n",
    )
    workspace.run_once()
    workspace.drop(
        "bulk_assignment",
        "a.csv",
        "patient_id,bed_id,reason,admission_date\nLA1,CARD-01,r,2026-03-10T09:30\nLA2,CARD-02,r,2026-03-10\n"
        "LA3,CARD-03,r,2026-03-10T09:30+01:00\n",
    )
    workspace.run_once()
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(Patient.mrn, PatientAdmission.admitted_at)
            .join(PatientAdmission, PatientAdmission.patient_id == Patient.id)
            .order_by(Patient.mrn)
        ).all()
    assert [(mrn, at.astimezone(UTC)) for mrn, at in rows] == [
        ("LA1", utc("2026-03-10T16:30")),
        ("LA2", utc("2026-03-10T07:00")),
        ("LA3", utc("2026-03-10T08:30")),
    ]


def test_born_this_morning_in_auckland_is_not_in_the_future() -> None:
    """At 08:00 on 3 December in Auckland it is still 2 December in UTC."""
    from processor.operations.import_patients.rules import PatientRow

    now = utc("2026-12-02T19:00")  # 08:00 NZDT, 3 December
    cells = {"first_name": "A", "last_name": "B", "email": "a@example.org", "date_of_birth": "2026-12-03"}
    row = PatientRow.model_validate(cells, context={"now": now, "zone": AKL})
    assert row.date_of_birth == date(2026, 12, 3)
    with pytest.raises(ValueError, match="in the future"):
        PatientRow.model_validate(cells, context={"now": now, "zone": UTC})

"""Scheduled reports: each run first claims its (schedule, period) in the database; only the claimer
writes the report, so several daemons sharing a database write each scheduled report once.

The period key of an interval schedule is the interval slot (seconds since the epoch divided by the
interval); of a crontab schedule, the minute it fired. A ``period`` option sets the report's dates:
``yesterday``; ``last_7_days`` and ``last_30_days`` (the full days before today); ``month_to_date``
(the first of this month through today). Days are UTC.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, update
from sqlalchemy.exc import IntegrityError

from processor.adapters.database.models import ScheduledRun
from processor.core.clock import Clock
from processor.core.report_request import ReportRequest, ReportType
from processor.logs import get_logger
from processor.reports.service import ReportOutcome, run_report
from processor.settings import ScheduleSettings, interval_seconds

log = get_logger(__name__)
SCHEDULER_USER = "scheduler"


def period_key(schedule: ScheduleSettings, now: datetime) -> str:
    """Which period a run at ``now`` is for; runs of one schedule and one key produce one report."""
    if schedule.every is not None:
        return f"slot-{int(now.timestamp()) // interval_seconds(schedule.every)}"
    return now.strftime("%Y-%m-%dT%H:%MZ")


def period_dates(period: str | None, today: date) -> tuple[date | None, date | None]:
    """The first and last day a ``period`` option means on ``today``."""
    if period == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == "last_7_days":
        return today - timedelta(days=7), today - timedelta(days=1)
    if period == "last_30_days":
        return today - timedelta(days=30), today - timedelta(days=1)
    if period == "month_to_date":
        return today.replace(day=1), today
    return None, None


def claim_run(engine: Engine, schedule_name: str, key: str, owner: str, now: datetime) -> bool:
    """Insert the (schedule, period) row; False when another daemon has already claimed this run."""
    row = {"schedule_name": schedule_name, "period_key": key, "host": owner, "claimed_at": now}
    try:
        with engine.begin() as connection:
            connection.execute(insert(ScheduledRun), row)
    except IntegrityError:
        return False
    return True


def run_schedule(
    engine: Engine, outbox_dir: Path, clock: Clock, schedule: ScheduleSettings, owner: str
) -> ReportOutcome | None:
    """One firing of a schedule: claim its period, then (if ours) write the report."""
    now = clock()
    key = period_key(schedule, now)
    if not claim_run(engine, schedule.schedule_name, key, owner, now):
        log.info("scheduled_report_skipped", schedule=schedule.schedule_name, period=key)
        return None
    start, end = period_dates(schedule.period, now.date())
    request = ReportRequest(ReportType(schedule.report), schedule.ward, start, end)
    outcome = run_report(
        engine, outbox_dir, clock, request, SCHEDULER_USER, owner, f"schedule {schedule.schedule_name}"
    )
    with engine.begin() as connection:
        connection.execute(
            update(ScheduledRun)
            .where(ScheduledRun.schedule_name == schedule.schedule_name, ScheduledRun.period_key == key)
            .values(output_file=outcome.output)
        )
    log.info(
        "scheduled_report_written",
        schedule=schedule.schedule_name,
        period=key,
        operation_id=outcome.operation_id,
        rows=outcome.rows,
    )
    return outcome

"""Scheduled reports: each run first claims its (schedule, period) in the database; only the claimer
writes the report, so several daemons sharing a database write each scheduled report once.

The period key of an interval schedule is its slot: interval triggers fire on multiples of the interval
since the epoch, and a run belongs to the nearest one. Of a crontab schedule, the time it was due: the
latest fire time at or before the run (within an hour), so a run that starts late keeps its key. If
writing the report fails, the claim is released and the run retried, so a period is not silently lost.

A crontab is read on the wall clock of the wards' zone (``timezone``), by the daemon's trigger and by
the period key alike (``LocalCronTrigger``: one firing for a time the clock skips or repeats, two for
an every-hour crontab in a repeated hour). The key is the due time in UTC, so each firing has its own
and no two firings share one, whatever the clocks do.

A ``period`` option sets the report's dates:
``yesterday``; ``last_7_days`` and ``last_30_days`` (the full days before today); ``month_to_date``
(the first of this month through today). Days are local days of the wards' zone: "today" is the date
there at the time of the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError

from processor.adapters.database.models import ScheduledRun
from processor.adapters.scheduler import LocalCronTrigger
from processor.core.clock import Clock, local_date
from processor.core.report_request import ReportRequest, ReportType
from processor.logs import get_logger
from processor.reports.service import ReportOutcome, request_problem, run_report
from processor.settings import ScheduleSettings, interval_seconds

log = get_logger(__name__)
SCHEDULER_USER = "scheduler"
LATE_LIMIT = timedelta(hours=1)
RETRIES = 3
RETRY_PAUSE_S = 10.0


def period_key(schedule: ScheduleSettings, now: datetime, zone: tzinfo = UTC) -> str:
    """Which period a run at ``now`` is for; runs of one schedule and one key produce one report.

    A crontab's key is its due time in UTC (``2026-10-25T01:30Z``), whatever ``zone`` its crontab is read
    in: distinct firings have distinct keys, and keys written before a zone was set stay comparable.
    """
    if schedule.every is not None:
        return f"slot-{round(now.timestamp() / interval_seconds(schedule.every))}"
    return due_time(schedule.cron or "", now, zone).strftime("%Y-%m-%dT%H:%MZ")


def due_time(crontab: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """The latest time ``crontab`` (on the wall clock of ``zone``) was due at or before ``now``, in UTC
    (looking back at most an hour; ``now`` to the minute when it was not due in that hour)."""
    trigger = LocalCronTrigger(crontab, zone)
    due = None
    fire = trigger.first_at_or_after(now - LATE_LIMIT)
    while fire is not None and fire <= now:
        due = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return due or now.astimezone(UTC).replace(second=0, microsecond=0)


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


def release_claim(engine: Engine, schedule_name: str, key: str) -> None:
    """Give a period back after a failed run, so that a retry (here or by another daemon) can take it."""
    with engine.begin() as connection:
        connection.execute(
            delete(ScheduledRun).where(
                ScheduledRun.schedule_name == schedule_name, ScheduledRun.period_key == key
            )
        )


def run_schedule(
    engine: Engine,
    outbox_dir: Path,
    clock: Clock,
    schedule: ScheduleSettings,
    owner: str,
    pause: Callable[[float], object] = time.sleep,
    zone: tzinfo = UTC,
) -> ReportOutcome | None:
    """One firing of a schedule: claim its period, then (if ours) write the report, retrying a failure.
    ``zone`` is the wards' zone: of the crontab, the period's days and the report's days.

    Raises after the last retry (the scheduler logs it), with the claim released.
    """
    now = clock()
    key = period_key(schedule, now, zone)
    start, end = period_dates(schedule.period, local_date(now, zone))
    request = ReportRequest(ReportType(schedule.report), schedule.ward, start, end)
    problem = request_problem(engine, request)
    if problem:
        raise ValueError(f"schedule {schedule.schedule_name!r} cannot run: {problem}")
    for attempt in range(1, RETRIES + 1):
        if not claim_run(engine, schedule.schedule_name, key, owner, now):
            log.info("scheduled_report_skipped", schedule=schedule.schedule_name, period=key)
            return None
        try:
            return _write_claimed(engine, outbox_dir, clock, schedule, owner, key, request, zone)
        except Exception:
            release_claim(engine, schedule.schedule_name, key)
            if attempt == RETRIES:
                raise
            log.warning(
                "scheduled_report_retried", schedule=schedule.schedule_name, period=key, attempt=attempt
            )
            pause(RETRY_PAUSE_S * attempt)
    return None


def _write_claimed(
    engine: Engine,
    outbox_dir: Path,
    clock: Clock,
    schedule: ScheduleSettings,
    owner: str,
    key: str,
    request: ReportRequest,
    zone: tzinfo,
) -> ReportOutcome:
    # Reports run in the scheduler's thread: an owner name of their own keeps the main thread's recovery,
    # which treats this process's leftovers as abandoned, off an operation still being written.
    outcome = run_report(
        engine,
        outbox_dir,
        clock,
        request,
        SCHEDULER_USER,
        f"{owner}#report",
        f"schedule {schedule.schedule_name}",
        zone=zone,
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

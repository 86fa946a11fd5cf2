"""APScheduler 3 (BackgroundScheduler) inside the daemon: housekeeping now, report schedules later.

Jobs coalesce missed runs into one, tolerate a late start (misfire grace), and never overlap themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from processor.logs import get_logger

log = get_logger(__name__)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}


def build_scheduler() -> BackgroundScheduler:
    """A scheduler in UTC with wardbulk's job defaults; the caller adds jobs and starts it."""
    return BackgroundScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)


def _logged(job_id: str, func: Callable[[], object]) -> Callable[[], None]:
    """``func`` whose failures are logged (a scheduler thread has nobody else to tell), never raised."""

    def run() -> None:
        try:
            func()
        except Exception:
            log.exception("scheduled_job_failed", job=job_id)

    return run


def add_daily_job(
    scheduler: BackgroundScheduler, job_id: str, func: Callable[[], object], first_run: datetime
) -> None:
    """Run ``func`` at ``first_run`` and every 24 hours after."""
    scheduler.add_job(
        _logged(job_id, func),
        "interval",
        id=job_id,
        name=job_id,
        hours=24,
        next_run_time=first_run,
        replace_existing=True,
    )


def add_report_job(
    scheduler: BackgroundScheduler,
    job_id: str,
    func: Callable[[], object],
    every_seconds: int | None,
    crontab: str | None,
) -> None:
    """Run ``func`` every ``every_seconds`` or on a 5-field ``crontab`` (UTC; weekday names only)."""
    trigger = (
        IntervalTrigger(seconds=every_seconds, timezone=UTC, start_date=_aligned(every_seconds))
        if every_seconds is not None
        else CronTrigger.from_crontab(crontab or "", timezone=UTC)
    )
    scheduler.add_job(_logged(job_id, func), trigger, id=job_id, name=job_id, replace_existing=True)


def _aligned(every_seconds: int) -> datetime:
    """A start on a multiple of the interval since the epoch, so every daemon fires on the same slots."""
    now = datetime.now(UTC).timestamp()
    return datetime.fromtimestamp((now // every_seconds + 1) * every_seconds, UTC)


def soon(now: datetime, seconds: float = 1.0) -> datetime:
    """A first run time shortly after start, so start-up work comes first."""
    return now + timedelta(seconds=seconds)

"""APScheduler 3 (BackgroundScheduler) inside the daemon: housekeeping now, report schedules later.

Jobs coalesce missed runs into one, tolerate a late start (misfire grace), and never overlap themselves.
The scheduler itself keeps UTC; a crontab is read on the wall clock of the wards' zone
(``LocalCronTrigger``), interval jobs count seconds and need no zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from processor.logs import get_logger

log = get_logger(__name__)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
# Wider than any change of a zone's clock (at most two hours, Antarctica/Troll): near a change, fire
# times are looked for this far around it.
DST_MARGIN = timedelta(hours=3)


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
    zone: tzinfo = UTC,
) -> None:
    """Run ``func`` every ``every_seconds`` or on a 5-field ``crontab`` (weekday names only) read on the
    wall clock of ``zone`` (see ``LocalCronTrigger``)."""
    trigger: BaseTrigger = (
        IntervalTrigger(seconds=every_seconds, timezone=UTC, start_date=_aligned(every_seconds))
        if every_seconds is not None
        else LocalCronTrigger(crontab or "", zone)
    )
    scheduler.add_job(_logged(job_id, func), trigger, id=job_id, name=job_id, replace_existing=True)


def _aligned(every_seconds: int) -> datetime:
    """A start on a multiple of the interval since the epoch, so every daemon fires on the same slots."""
    now = datetime.now(UTC).timestamp()
    return datetime.fromtimestamp((now // every_seconds + 1) * every_seconds, UTC)


def soon(now: datetime, seconds: float = 1.0) -> datetime:
    """A first run time shortly after start, so start-up work comes first."""
    return now + timedelta(seconds=seconds)


class LocalCronTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """A 5-field crontab on the wall clock of ``zone``, with one rule for each change of the clocks:

    - a time the clock skips (spring: 02:30 when 02:00 becomes 03:00) fires as if the clock had not yet
      changed (at 03:30 new time), so no firing is lost;
    - a time that happens twice (autumn: 02:30 when 03:00 goes back to 02:00) fires once, at its first
      occurrence; unless the crontab's hour field is ``*``: an every-hour crontab fires in both hours,
      as each is an hour of its own (cron's own rule).

    Fire times (aware, UTC) strictly increase. APScheduler 3's CronTrigger with a ``ZoneInfo`` does not
    do this: after an autumn change it returns one past time again and again
    (agronholm/apscheduler#1021), which holds the scheduler in a loop.
    """

    def __init__(self, crontab: str, zone: tzinfo) -> None:
        # The crontab matched against wall-clock times written as if they were UTC (no changes there).
        self._wall = CronTrigger.from_crontab(crontab, timezone=UTC)
        self._zone = zone
        self._every_hour = crontab.split()[1] == "*"
        self._crontab = crontab

    def __str__(self) -> str:
        return f"cron[{self._crontab}] in {self._zone}"

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The first fire time at or after ``now``, or, given the previous one, the first after it (which
        may be before ``now``: the scheduler counts a late start's missed runs that way)."""
        start = now.astimezone(UTC)
        if previous_fire_time is not None:
            # Strictly after the previous one, even when ``now`` is exactly it: APScheduler counts
            # missed runs while the next time is not after ``now``, so the same time again never ends.
            start = previous_fire_time.astimezone(UTC) + timedelta(microseconds=1)
        return self.first_at_or_after(start)

    def first_at_or_after(self, start: datetime) -> datetime | None:
        """The first fire time at or after ``start``."""
        wall = self._next_wall(start)
        if wall is None:
            return None
        fires = self._instants(wall)
        if (
            len(fires) == 1
            and fires[0] >= start
            and self._steady(start - DST_MARGIN, start, fires[0] + DST_MARGIN)
        ):
            return fires[0]  # no change of the clocks nearby: wall times map one to one
        return self._first_near_change(start)

    def _first_near_change(self, start: datetime) -> datetime | None:
        """``first_at_or_after`` near a change, where wall order and time order differ: every wall time
        from a margin before ``start`` to a margin after the first fire time found is weighed."""
        best: datetime | None = None
        wall = self._next_wall(start - DST_MARGIN)
        while wall is not None and (
            best is None or wall <= best.astimezone(self._zone).replace(tzinfo=UTC) + DST_MARGIN
        ):
            for fire in self._instants(wall):
                if fire >= start and (best is None or fire < best):
                    best = fire
            wall = self._wall.get_next_fire_time(wall, wall + timedelta(seconds=1))
        return best

    def _next_wall(self, moment: datetime) -> datetime | None:
        """The first wall time the crontab matches at or after ``moment``'s wall time (written as UTC)."""
        as_wall = moment.astimezone(self._zone).replace(tzinfo=UTC, fold=0)
        fire: datetime | None = self._wall.get_next_fire_time(None, as_wall)
        return fire

    def _instants(self, wall: datetime) -> list[datetime]:
        """When a wall time happens (UTC): once; or, skipped, as if before the change; or, twice, the
        first time (and the second too for an every-hour crontab)."""
        local = wall.replace(tzinfo=self._zone)
        first = local.replace(fold=0).astimezone(UTC)
        second = local.replace(fold=1).astimezone(UTC)
        if second <= first:  # the same instant, or a skipped time (fold=1 reads it with the later offset)
            return [first]
        return [first, second] if self._every_hour else [first]

    def _steady(self, *moments: datetime) -> bool:
        """Whether the zone's offset is the same at all ``moments`` (no change between them, for the
        spans this is asked about, whose ends are never two changes apart with a match between)."""
        return len({moment.astimezone(self._zone).utcoffset() for moment in moments}) == 1

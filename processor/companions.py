"""What runs beside the daemon's file loop, so that the loop itself only takes, processes and publishes
files (``daemon``):

- alerts (``Alerter``) and their periodic checks (``AlertChecks``: file_waiting, sender_silent);
- the courier of caregiver e-mails (``Courier``);
- liveness: the heartbeat row and systemd's notify protocol (``Liveness``);
- the metrics server (``metrics_address``);
- the dashboard page, refreshed after files (debounced) and every ``DASHBOARD_EVERY_S``;
- the scheduler's jobs: expired files purged daily, the alert checks, the report schedules.

Order matters at both ends. ``start`` comes before recovery, so that a daemon redoing a big file after a
crash is seen alive and an unclean start is alerted. ``stop`` closes the dashboard, the courier (what it
holds goes back to pending) and the alerts (held-back repeats reported), then the metrics server, and
records a clean stop only when the loop ended normally (``ended``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from processor.adapters import retention
from processor.adapters.scheduler import add_daily_job, add_report_job, build_scheduler, soon
from processor.adapters.strays import find_strays
from processor.alert_checks import AlertChecks
from processor.alerting import Alerter
from processor.core.operation_kinds import OPERATION_NAMES
from processor.housekeeping import purge_expired
from processor.liveness import Liveness, serve_if_asked
from processor.logs import get_logger
from processor.notifying import Courier
from processor.pipeline import Decided, FileOutcome, Pipeline
from processor.reports.dashboard import refresh_dashboard
from processor.reports.dashboard_worker import DashboardWorker
from processor.reports.mailing import mail_report
from processor.reports.schedules import run_schedule
from processor.settings import ScheduleSettings, Settings, interval_seconds

log = get_logger(__name__)
DASHBOARD_EVERY_S = 300


@dataclass
class Companions:
    """The daemon's companions (see the module); ``state`` says (paused, files processed) for the
    heartbeat."""

    settings: Settings
    pipeline: Pipeline
    state: Callable[[], tuple[bool, int]]
    _metrics: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.dashboard = DashboardWorker(
            self.refresh_dashboard, self.settings.dashboard_debounce_s, time.monotonic
        )
        engine, host, clock = self.pipeline.engine, self.pipeline.host, self.pipeline.clock
        self.alerter = Alerter(self.settings.alerts)
        self.courier = Courier(engine, self.settings, host, clock, alert=self.alerter.notifications_failed)
        self.alert_checks = AlertChecks(self.settings, engine, self.alerter, clock, host)
        self.liveness = Liveness(engine, host, clock, self.state)

    def start(self) -> None:
        """Before recovery: alerts, liveness (and the unclean-start alert), the metrics server."""
        self.alerter.start()
        died = self.liveness.start(forget_dead=self.alerter.wants("unclean_start"))
        if died:
            self.alerter.unclean_start(
                [gone.host for gone in died], died[0].beat_at.isoformat(timespec="seconds")
            )
        self._metrics = serve_if_asked(self.pipeline.engine, self.settings)

    def start_dashboard(self) -> None:
        """After the start-up scan: a page from the start, even before the first file."""
        self.dashboard.changed()
        self.dashboard.start()

    @contextmanager
    def scheduled(self) -> Iterator[None]:
        """The courier's thread and the scheduler's jobs, for as long as the daemon watches."""
        self.courier.start()
        scheduler = build_scheduler()
        add_daily_job(scheduler, "purge_expired", self.purge_expired, soon(self.pipeline.clock()))
        add_report_job(scheduler, "dashboard", self.dashboard.changed, DASHBOARD_EVERY_S, None)
        if self.alert_checks.wanted:  # file_waiting, sender_silent (processor.alert_checks)
            checks_every = self.settings.alerts.check_every_s
            add_report_job(scheduler, "alert-checks", self.alert_checks.run, checks_every, None)
        for number, schedule in enumerate(self.settings.schedules):
            every = interval_seconds(schedule.every) if schedule.every else None
            job_id = f"report-{number}-{schedule.schedule_name}"
            job = partial(self.scheduled_report, schedule)
            add_report_job(scheduler, job_id, job, every, schedule.cron, self.settings.zone())
        scheduler.start()
        try:
            yield
        finally:
            scheduler.shutdown(wait=True)

    def files_published(self, batch: list[Decided], outcomes: list[FileOutcome]) -> None:
        """Alerts for the files' outcomes (queued, never waited on); their caregiver e-mails are due."""
        self.alerter.files_published(batch, outcomes)
        self.courier.wake()

    def stop(self, ended: bool) -> None:
        """Close every companion (see the module); ``ended``: the loop ended normally."""
        try:
            self.dashboard.close()
        finally:
            self.courier.close()
            self.alerter.close()
            if self._metrics is not None:
                self._metrics.shutdown()
                self._metrics.server_close()
            self.liveness.stop(clean=ended)

    def refresh_dashboard(self) -> None:
        """Regenerate outbox/dashboard.html (after operations, debounced, and every few minutes)."""
        strays = [stray.relative for stray in find_strays(self.settings.inbox_dir, OPERATION_NAMES)]
        refresh_dashboard(
            self.pipeline.engine,
            self.settings.outbox_dir,
            self.pipeline.clock(),
            strays=strays,
            zone=self.settings.zone(),
        )

    def purge_archive(self) -> int:
        """Delete archived inputs older than ``archive_retention_days``."""
        removed = retention.purge_archive(self.settings.archive_dir, self.settings.archive_retention_days)
        log.info("archive_purged", files_removed=removed, retention_days=self.settings.archive_retention_days)
        return removed

    def purge_expired(self) -> None:
        """Delete the archive's and the outbox's expired files (a daily scheduled job)."""
        purge_expired(self.settings, self.pipeline.engine, self.pipeline.clock())

    def scheduled_report(self, schedule: ScheduleSettings) -> None:
        """One firing of ``schedule``: its report written (by whichever daemon claims the period) and
        mailed if it asks. A connection error is logged by the job wrapper; the next firing tries again."""
        written = run_schedule(
            self.pipeline.engine,
            self.settings.outbox_dir,
            self.pipeline.clock,
            schedule,
            self.pipeline.host,
            zone=self.settings.zone(),
        )
        if written is not None and schedule.mail_to:
            mail_report(self.settings, schedule, written)

"""The daemon's main loop: recovery, scan, watch, ordered processing, graceful stop.

- At start: recovery (nothing stays stuck), then a scan of every inbox folder.
- Running: watchdog sightings and a periodic rescan feed one arrival-ordered queue across all inboxes;
  ready files are claimed and processed one at a time, in order.
- SIGTERM/SIGINT: the file in hand is rolled back at the next chunk boundary (it waits, claimed, and is
  processed again at the next start) or finished if it is already committing; then the loop exits.
- ``once``: process every file present at start as soon as it is ready, then exit.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from types import FrameType

from processor.adapters import inbox
from processor.adapters.arrivals import ArrivalQueue
from processor.adapters.inbox import InboxFile
from processor.adapters.scheduler import add_daily_job, add_report_job, build_scheduler, soon
from processor.adapters.watcher import Sighting, start_watching
from processor.core.operation_types import OperationType
from processor.logs import get_logger
from processor.operations.registry import is_available
from processor.pipeline import Interrupted, Pipeline, process_claimed
from processor.recovery import recover
from processor.reports.dashboard import Debouncer, refresh_dashboard
from processor.reports.schedules import run_schedule
from processor.settings import ScheduleSettings, Settings, interval_seconds

log = get_logger(__name__)
TICK_S = 0.1
MAX_BACKOFF_S = 60.0
DASHBOARD_EVERY_S = 300


def available_operation_types() -> list[OperationType]:
    """The operation types this version can apply; other inbox folders are left untouched."""
    return [operation_type for operation_type in OperationType if is_available(operation_type)]


@dataclass
class Daemon:
    """One wardbulk daemon process."""

    settings: Settings
    pipeline: Pipeline
    stop_event: threading.Event = field(default_factory=threading.Event)
    processed: int = 0
    _failures: int = 0

    def __post_init__(self) -> None:
        self.dashboard = Debouncer(self.settings.dashboard_debounce_s, time.monotonic)
        self.pipeline.should_stop = self.stop_event.is_set
        self.operation_types = available_operation_types()
        self.queue = ArrivalQueue(self.settings.stability_window_s, self._needs_marker)
        self._sightings: queue.Queue[Sighting] = queue.Queue()

    def _needs_marker(self, inbox_file: InboxFile) -> bool:
        return self.settings.operations.for_type(inbox_file.operation_type).done_marker

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a graceful stop."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        self.stop_event.set()

    def run(self, once: bool = False) -> int:
        """Run until stopped (or, with ``once``, until the files present at start are done)."""
        log.info("daemon_started", once=once, operations=[t.value for t in self.operation_types])
        self._recover()
        self._rescan()
        self.dashboard.changed()  # a page from the start, even before the first file
        if once:
            self._drain_present_files()
        else:
            self._run_with_scheduler()
        log.info("daemon_stopped", files_processed=self.processed)
        return 0

    def refresh_dashboard(self) -> None:
        """Regenerate outbox/dashboard.html (after operations, debounced, and every few minutes)."""
        refresh_dashboard(self.pipeline.engine, self.settings.outbox_dir, self.pipeline.clock())

    def _refresh_dashboard_if_due(self) -> None:
        if self.dashboard.due():
            try:
                self.refresh_dashboard()
            except Exception:
                log.exception("dashboard_failed")

    def purge_archive(self) -> int:
        """Delete archived inputs older than ``archive_retention_days`` (a daily scheduled job)."""
        removed = inbox.purge_archive(self.settings.archive_dir, self.settings.archive_retention_days)
        log.info("archive_purged", files_removed=removed, retention_days=self.settings.archive_retention_days)
        return removed

    def _run_with_scheduler(self) -> None:
        scheduler = build_scheduler()
        add_daily_job(scheduler, "archive_purge", self.purge_archive, soon(self.pipeline.clock()))
        add_report_job(scheduler, "dashboard", self.refresh_dashboard, DASHBOARD_EVERY_S, None)
        for number, schedule in enumerate(self.settings.schedules):
            every = interval_seconds(schedule.every) if schedule.every else None
            add_report_job(
                scheduler,
                f"report-{number}-{schedule.schedule_name}",
                partial(self._scheduled_report, schedule),
                every,
                schedule.cron,
            )
        scheduler.start()
        try:
            self._watch_until_stopped()
        finally:
            scheduler.shutdown(wait=True)

    def _recover(self) -> None:
        """Finish what crashed or stopped processes (this one's predecessors, or dead peers) left."""
        try:
            self.processed += len(recover(self.pipeline))
        except Interrupted:
            pass  # a stop arrived while recovering; the file waits for the next start
        except Exception:
            log.exception("recovery_failed")
            self._back_off()

    def _back_off(self) -> None:
        """After an unexpected failure (the database down, say), wait before touching files again."""
        self._failures += 1
        delay = min(MAX_BACKOFF_S, 2.0**self._failures)
        log.warning("daemon_backing_off", seconds=delay)
        self.stop_event.wait(delay)

    def _scheduled_report(self, schedule: ScheduleSettings) -> None:
        # A connection error here is logged by the job wrapper; the next firing tries again.
        run_schedule(
            self.pipeline.engine, self.settings.outbox_dir, self.pipeline.clock, schedule, self.pipeline.host
        )

    def _rescan(self) -> None:
        now = time.monotonic()
        for inbox_file in inbox.scan(self.settings.inbox_dir, self.operation_types):
            self.queue.offer(inbox_file, now)

    def _drain_present_files(self) -> None:
        while len(self.queue) and not self.stop_event.is_set():
            self._process_ready()
            self.stop_event.wait(TICK_S)
        self.dashboard.changed()
        self._refresh_dashboard_if_due()

    def _watch_until_stopped(self) -> None:
        folders = [self.settings.inbox_dir / t.value for t in self.operation_types]
        observer = start_watching(
            folders, self._sightings, self.settings.observer == "polling", self.settings.poll_interval_s
        )
        # Files dropped between the start-up scan and the observer's start have no event: scan again now,
        # before any event is taken, so they keep their place (by modification time) ahead of later files.
        self._rescan()
        log.info("daemon_watching", folders=len(folders))
        next_rescan = time.monotonic() + self.settings.rescan_interval_s
        try:
            while not self.stop_event.is_set():
                self._take_sightings()
                if time.monotonic() >= next_rescan:
                    self._recover()
                    self._rescan()
                    next_rescan = time.monotonic() + self.settings.rescan_interval_s
                self._process_ready()
                self._refresh_dashboard_if_due()
                self.stop_event.wait(TICK_S)
        finally:
            observer.stop()
            observer.join(timeout=5)

    def _take_sightings(self) -> None:
        now = time.monotonic()
        while True:
            try:
                sighting = self._sightings.get_nowait()
            except queue.Empty:
                return
            self._offer_sighting(sighting, now)

    def _offer_sighting(self, sighting: Sighting, now: float) -> None:
        path = sighting.path
        if path.name.endswith(inbox.DONE_SUFFIX):  # a marker arrived: its data file is complete
            path = path.with_name(path.name.removesuffix(inbox.DONE_SUFFIX))
        elif inbox.is_ignored(path.name):
            return
        operation_type = inbox.operation_type_of(self.settings.inbox_dir, path)
        if operation_type in self.operation_types:
            self.queue.offer(InboxFile(path, operation_type), now, renamed_in=sighting.renamed_in)

    def _process_ready(self) -> None:
        for inbox_file in self.queue.take_ready(time.monotonic()):
            if self.stop_event.is_set():
                return
            claimed = inbox.claim(self.settings.inbox_dir, inbox_file, self.pipeline.host)
            if claimed is None:
                continue  # another daemon took it
            try:
                process_claimed(self.pipeline, claimed)
            except Interrupted:
                return
            except Exception:
                # The file stays claimed; recovery takes it up again once the cause (e.g. an outage) is gone.
                log.exception(
                    "file_processing_failed",
                    operation=inbox_file.operation_type.value,
                    file=inbox_file.path.name,
                )
                self._back_off()
                return
            self._failures = 0
            self.processed += 1
            self.dashboard.changed()

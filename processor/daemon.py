"""The daemon's main loop: recovery, scan, watch, ordered processing, graceful stop.

- At start: recovery (nothing stays stuck), then a scan of every inbox folder.
- Running: watchdog sightings (each wakes the loop at once) and a periodic rescan feed one
  arrival-ordered queue across all inboxes; ready files are claimed and processed one at a time, in
  order, and each committed file is published by the ``Publisher`` thread while the next is processed.
- SIGTERM/SIGINT: the file in hand is rolled back at the next chunk boundary (it waits, claimed, and is
  processed again at the next start) or finished if it is already committing; then the loop exits.
  The handler only records the signal (``SignalRelay``): logging or taking a lock inside a handler can
  deadlock or raise a reentrant-call error in the very code it interrupted, and lose the stop.
- No entry stops the loop: an entry that cannot be claimed is logged and left; one that fails in any
  other way ends as its own failed summary (``pipeline``).
- A fault of the host (a disk full or read-only, a share gone, the database unable to write) is a pause,
  never a verdict (``HostPause``): no new file is claimed, claimed ones wait, and when the host can go
  on, recovery finishes the waiting files in arrival order before the queue goes on. A file that would
  not fit in the free space is not started: the pause waits for room.
- ``once``: process every file present at start as soon as it is ready, then exit; if the host makes it
  pause, it exits at once with ``HOST_PAUSED_EXIT`` (the files wait for the next run).
- What runs beside the loop (alerts, caregiver e-mails, heartbeats and systemd, metrics, the dashboard,
  the scheduler's jobs) is the ``Companions``' business: the loop starts them, tells them about files,
  and stops them.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path

from processor.adapters import entries, inbox
from processor.adapters.arrivals import ArrivalQueue
from processor.adapters.folders import VALIDATE_FOLDER
from processor.adapters.inbox import InboxFile
from processor.adapters.owners import token
from processor.adapters.signals import SignalRelay
from processor.adapters.storage import MIB
from processor.adapters.strays import find_strays, write_note
from processor.adapters.watcher import Sighting, start_watching
from processor.companions import Companions
from processor.core.names import display_name
from processor.core.operation_kinds import OPERATION_NAMES, OperationType
from processor.logs import get_logger
from processor.operations.registry import is_available
from processor.pipeline import (
    Decided,
    FileOutcome,
    Interrupted,
    Pipeline,
    decide_claimed,
    is_host_fault,
    publish_all,
)
from processor.pipeline.pause import HostPause
from processor.pipeline.publisher import Publisher
from processor.recovery import recover
from processor.settings import Settings

log = get_logger(__name__)
TICK_S = 0.1
HOST_PAUSED_EXIT = 75  # EX_TEMPFAIL: ``run --once`` met a fault of the host; its files wait for the next run
MAX_BACKOFF_S = 60.0
# Batches of committed files are published at most this often while files keep coming (``Publisher``).
PUBLISH_EVERY_S = 0.025


class Went(Enum):
    """What one file's turn leaves the loop to do."""

    ON = "on"  # the next file
    STOP_BEFORE = "stop before"  # stop; this file was not taken and keeps its place
    STOP_AFTER = "stop after"  # stop; this file was taken (it waits claimed, or it is done)


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
        self.pipeline.should_stop = self._moving_on
        self.operation_types = available_operation_types()
        self.queue = ArrivalQueue(self.settings.stability_window_s, self._needs_marker)
        self._sightings: queue.Queue[Sighting] = queue.Queue()
        self._publisher: Publisher | None = None
        # Set by the watcher after each sighting and by a stop request: the loop goes on at once instead
        # of at its next tick (a renamed-in file is ready the moment it is seen).
        self._wake = threading.Event()
        self._signals: SignalRelay | None = None
        self._stop_signal: int | None = None
        self._stop_logged = False
        self._strays_reported: set[Path] = set()
        self._sender_folders = self.settings.sender_folders()  # settings are frozen: once
        reserve = self.settings.free_space_reserve_mb * MIB
        self.pause = HostPause(self.pipeline.host_areas, token(self.pipeline.host), reserve)
        self.companions = Companions(
            self.settings, self.pipeline, lambda: (self.pause.paused, self.processed)
        )
        self.liveness = self.companions.liveness
        self.dashboard = self.companions.dashboard

    def _moving_on(self) -> bool:
        """Whether to stop, asked at every chunk boundary of a file: also a sign of life."""
        self.liveness.moved()
        return self.stop_event.is_set()

    def _needs_marker(self, inbox_file: InboxFile) -> bool:
        return self.settings.operations.for_type(inbox_file.operation_type).done_marker

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a graceful stop (see ``SignalRelay``)."""
        self._signals = SignalRelay(self.request_stop)
        self._signals.install((signal.SIGTERM, signal.SIGINT))

    def request_stop(self, signum: int) -> None:
        """Stop gracefully; called on the relay's thread, never inside a signal handler."""
        self._stop_signal = signum
        self.stop_event.set()
        self._wake.set()

    def _log_stop_request(self) -> None:
        if self._stop_signal is not None and not self._stop_logged:
            self._stop_logged = True
            log.info("stop_requested", signal=signal.Signals(self._stop_signal).name)

    def run(self, once: bool = False) -> int:
        """Run until stopped (or, with ``once``, until the files present at start are done)."""
        log.info("daemon_started", once=once, operations=[t.value for t in self.operation_types])
        self.companions.start()  # before recovery: a daemon redoing a big file is seen alive
        self._recover(sweep=True)
        self._rescan()
        self.companions.start_dashboard()
        self._publisher = Publisher(
            self._publish_and_alert,
            partial(self.pause.host_fault, step="publishing"),
            self.pipeline.host_areas,
            self.pause.succeeded,  # a file got through only once it is published
            every_s=PUBLISH_EVERY_S,
        )
        ended = False
        try:
            if once:
                self._drain_present_files()
                self.companions.courier.deliver_now()  # these files' caregiver e-mails, before exiting
            else:
                with self.companions.scheduled():
                    self._watch_until_stopped()
            ended = True
        finally:
            self.liveness.stopping()
            try:
                self._publisher.close()
                self._publisher = None
            finally:
                self.companions.stop(ended)
            if self._signals is not None:
                self._signals.uninstall()
        self._log_stop_request()
        log.info("daemon_stopped", files_processed=self.processed)
        return HOST_PAUSED_EXIT if once and self.pause.paused else 0

    def _recover(self, sweep: bool = False) -> None:
        """Finish what crashed or stopped processes (this one's predecessors, or dead peers) left;
        ``sweep``: remove leftover temporary files in any case (at start, and after a pause)."""
        self._drain_publisher()  # recovery would otherwise publish the files still queued, alongside it
        try:
            recovered = recover(self.pipeline, sweep)
            self.processed += len(recovered)
            self.companions.alerter.files_recovered(recovered)
        except Interrupted:
            pass  # a stop arrived while recovering; the file waits for the next start
        except Exception as exc:
            if is_host_fault(exc, self.pipeline.host_areas):
                self.pause.host_fault(exc, step="recovery")  # retried when the host can go on
            else:
                log.exception("recovery_failed")
                self._back_off()

    def _back_off(self) -> None:
        """After an unexpected failure (the database down, say), wait before touching files again."""
        self._failures += 1
        delay = min(MAX_BACKOFF_S, 2.0**self._failures)
        log.warning("daemon_backing_off", seconds=delay)
        self.stop_event.wait(delay)

    def _rescan(self) -> None:
        now = time.monotonic()
        senders = self._sender_folders
        for inbox_file in inbox.scan(self.settings.inbox_dir, self.operation_types, senders):
            self.queue.offer(inbox_file, now)
        self._report_strays()

    def _report_strays(self) -> None:
        """Log each entry outside the operation folders once, and note each such file in the outbox."""
        for stray in find_strays(self.settings.inbox_dir, OPERATION_NAMES):
            if stray.path in self._strays_reported:
                continue
            self._strays_reported.add(stray.path)
            log.warning("inbox_entry_unknown", entry=stray.relative, folder=stray.is_folder)
            try:
                write_note(self.settings.outbox_dir, stray, OPERATION_NAMES, self.pipeline.clock())
            except OSError as exc:
                log.warning("unknown_note_failed", entry=stray.relative, error=type(exc).__name__)
            self.dashboard.changed()

    def _drain_present_files(self) -> None:
        while len(self.queue) and not self.stop_event.is_set():
            self._process_ready()
            if self.pause.paused:
                log.warning("host_paused_run_once", files_waiting=len(self.queue))
                break
            self.stop_event.wait(TICK_S)
        self._drain_publisher()
        self.dashboard.changed()

    def _watch_until_stopped(self) -> None:
        inbox_dir = self.settings.inbox_dir
        folders = [inbox_dir / t.value for t in self.operation_types]
        subfolders = [VALIDATE_FOLDER, *{folder for _, folder in self._sender_folders}]
        folders += [folder / sub for folder in folders for sub in subfolders if (folder / sub).is_dir()]
        observer = start_watching(
            folders,
            self._sightings,
            self.settings.observer == "polling",
            self.settings.poll_interval_s,
            wake=self._wake.set,
        )
        # Files dropped between the start-up scan and the observer's start have no event: scan again now,
        # before any event is taken, so they keep their place (by modification time) ahead of later files.
        self._rescan()
        log.info("daemon_watching", folders=len(folders))
        self.liveness.ready(f"watching {len(folders)} inbox folders")
        next_rescan = time.monotonic() + self.settings.rescan_interval_s
        try:
            while not self.stop_event.is_set():
                self._wake.clear()  # before taking sightings: one put after this wakes the next wait
                self.liveness.moved()
                self._take_sightings()
                if time.monotonic() >= next_rescan and not self.pause.paused:
                    self._recover()
                    self._rescan()
                    next_rescan = time.monotonic() + self.settings.rescan_interval_s
                self._process_ready()
                self._wake.wait(TICK_S)
        finally:
            self._log_stop_request()
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
        inbox_file = inbox.inbox_file_of(self.settings.inbox_dir, path, self._sender_folders)
        if inbox_file is not None and inbox_file.operation_type in self.operation_types:
            self.queue.offer(inbox_file, now, renamed_in=sighting.renamed_in)

    def _process_ready(self) -> None:
        """Claim and decide the ready files in arrival order, unless the host makes the daemon pause;
        files not taken keep their place in the queue."""
        if not self._host_ready():
            return
        ready = self.queue.take_ready(time.monotonic())
        for taken, inbox_file in enumerate(ready):
            # The publisher may have paused the daemon since the last file: check before each one.
            if self.stop_event.is_set() or self.pause.paused or not self._fits(inbox_file):
                self.queue.put_back(ready[taken:])
                return
            went = self._decide(inbox_file)
            if went is not Went.ON:
                self.queue.put_back(ready[taken + 1 if went is Went.STOP_AFTER else taken :])
                return

    def _host_ready(self) -> bool:
        """False while paused; when a pause ends, recovery first finishes the files that waited."""
        if not self.pause.paused:
            return True
        if not self.pause.may_go_on():
            return False
        self._recover(sweep=True)
        return not self.pause.paused

    def _fits(self, inbox_file: InboxFile) -> bool:
        """Whether the file has room on every area's filesystem; else the daemon pauses for room. A file
        over max_file_bytes goes on (it is refused as file-too-large, unread)."""
        try:
            size = inbox_file.path.lstat().st_size
        except OSError:
            return True  # gone, or cannot be looked at: claiming it says which
        if size > self.settings.max_file_bytes:
            return True
        try:
            shortage = self.pause.shortage(size)
        except OSError as exc:  # the areas cannot even be looked at (a share gone)
            self.pause.host_fault(exc, step="checking free space")
            return False
        if shortage is None:
            return True
        self.pause.no_room(shortage, inbox_file.path, size, display_name(inbox_file.path.name))
        return False

    def _decide(self, inbox_file: InboxFile) -> Went:
        """Claim and decide one file; whether the loop goes on, and if not, whether this file is done."""
        claimed = self._claim(inbox_file)
        if claimed is None:  # another daemon took it, or it cannot be claimed now (a pause: it stays)
            return Went.STOP_BEFORE if self.pause.paused else Went.ON
        try:
            decided = decide_claimed(self.pipeline, claimed, inbox_file.dry_run, inbox_file.sender)
        except Interrupted:
            return Went.STOP_AFTER
        except Exception as exc:
            # The pipeline turns every other failure into the file's summary: this is the host's fault.
            # The file stays claimed; recovery takes it up again once the host can go on.
            if is_host_fault(exc, self.pipeline.host_areas):
                self.pause.host_fault(exc, step="processing")
            else:
                log.exception(
                    "file_processing_failed",
                    operation=inbox_file.operation_type.value,
                    file=claimed.original_name,
                )
                self._back_off()
            return Went.STOP_AFTER
        self._publish(decided)
        self._failures = 0
        self.processed += 1
        self.dashboard.changed()
        return Went.ON

    def _claim(self, inbox_file: InboxFile) -> inbox.ClaimedFile | None:
        """Claim the entry; None (logged) when it cannot be moved now. The next rescan offers it again;
        meanwhile every other file goes on."""
        try:
            return inbox.claim(self.settings.inbox_dir, inbox_file, self.pipeline.host)
        except OSError as exc:
            if is_host_fault(exc, self.pipeline.host_areas):
                self.pause.host_fault(exc, step="claiming")
                return None
            log.warning(
                "claim_failed",
                operation=inbox_file.operation_type.value,
                file=display_name(inbox_file.path.name),
                error=entries.error_name(exc),
            )
            return None

    def _publish_and_alert(self, batch: list[Decided]) -> list[FileOutcome]:
        """Publish the files, then raise the alerts their outcomes call for (queued: never waited on)."""
        outcomes = publish_all(self.pipeline, batch)
        self.companions.files_published(batch, outcomes)
        return outcomes

    def _publish(self, decided: Decided) -> None:
        if self._publisher is None:  # outside ``run`` (tests drive the loop's steps directly)
            self._publish_and_alert([decided])
            self.pause.succeeded()
        else:
            self._publisher.submit(decided)

    def _drain_publisher(self) -> None:
        if self._publisher is not None:
            self._publisher.drain()

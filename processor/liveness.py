"""The daemon's signs of life (issue 15), for ``wardbulk health`` and for systemd.

A thread refreshes the daemon's row in ``daemon_heartbeats`` every ``HEARTBEAT_S`` and sends systemd
``WATCHDOG=1`` (when the unit has ``WatchdogSec``), but only while the daemon moves: its loop turns, or
the file in hand passes a chunk boundary, within ``STALL_AFTER_S``. A daemon stuck in a call stops
beating, so ``health`` says so and systemd's watchdog restarts it. ``READY=1`` is sent once the folders
are watched, ``STATUS=`` when the state changes (watching, paused by the host), ``STOPPING=1`` at the end.

A beat that cannot be written (the database down, or SQLite's single writer lock held by a long file)
is skipped and logged once; the watchdog ping does not wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from processor.adapters.database.daemons import Beat, forget_old, record_beat, record_stop
from processor.adapters.systemd import SystemdNotifier
from processor.logs import get_logger

log = get_logger(__name__)
HEARTBEAT_S = 15.0
STALL_AFTER_S = 120.0
PAUSED_STATUS = "paused: the host cannot take files now (see the log)"


class Liveness:
    """One daemon's heartbeat thread and systemd notifications (see the module)."""

    def __init__(
        self,
        engine: Engine,
        owner: str,
        clock: Callable[[], datetime],
        state: Callable[[], tuple[bool, int]],  # (paused by the host, files processed)
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self._engine, self._owner, self._clock, self._state = engine, owner, clock, state
        self.notifier = notifier or SystemdNotifier()
        watchdog = self.notifier.watchdog_s
        self._interval = min(HEARTBEAT_S, watchdog / 3) if watchdog else HEARTBEAT_S
        self._moved = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = clock()
        self._beat_failed = False
        self._status = ""  # what the daemon is doing ("watching 7 folders")
        self._sent_status = ""  # the STATUS= systemd was last sent

    def moved(self) -> None:
        """The daemon made progress (its loop turned, a chunk was done)."""
        self._moved = time.monotonic()

    def start(self) -> None:
        """Forget long-gone daemons, beat once, and keep beating on a thread."""
        self._write(lambda: forget_old(self._engine, self._clock()))
        self._beat()
        self._thread = threading.Thread(target=self._run, name="liveness", daemon=True)
        self._thread.start()

    def ready(self, status: str) -> None:
        """The daemon watches its folders: systemd may consider the service started."""
        self._status = self._sent_status = status
        self.notifier.notify("READY=1", f"STATUS={status}")

    def stop(self) -> None:
        """The daemon ends cleanly: stop beating, say so to systemd and in the daemon's row."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.notifier.notify("STOPPING=1", "STATUS=stopping")
        self._write(lambda: record_stop(self._engine, self._owner, self._clock()))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if time.monotonic() - self._moved <= STALL_AFTER_S:
                self.notifier.notify("WATCHDOG=1", *self._status_change())
                self._beat()

    def _status_change(self) -> list[str]:
        """``STATUS=`` when the daemon's state changed since it was last sent (paused, or not)."""
        paused, _ = self._state()
        status = PAUSED_STATUS if paused else self._status
        if not status or status == self._sent_status:
            return []
        self._sent_status = status
        return [f"STATUS={status}"]

    def _beat(self) -> None:
        paused, processed = self._state()
        beat = Beat(
            self._owner, self._owner.split(":", 1)[0], self._started_at, self._clock(), paused, processed
        )
        self._write(lambda: record_beat(self._engine, beat))

    def _write(self, write: Callable[[], None]) -> None:
        try:
            write()
        except Exception as exc:  # a missed beat is not fatal: health reads the process table too
            if not self._beat_failed:
                self._beat_failed = True
                log.warning("daemon_heartbeat_failed", error=type(exc).__name__)
        else:
            self._beat_failed = False

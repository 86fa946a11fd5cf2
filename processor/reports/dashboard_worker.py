"""Building ``outbox/dashboard.html`` off the daemon's main loop: a debounced worker thread.

File processing never waits for the page, and the page never takes more than a small share of a core:
bursts of changes coalesce (``Debouncer``), and a page that takes long to build (years of history) is
rebuilt less often.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from processor.logs import get_logger

log = get_logger(__name__)

RETRY_S = 5.0  # a failed build is tried again no sooner
CLOSE_TIMEOUT_S = 30.0  # how long stopping waits for a build in progress
LOAD_FACTOR = 10.0  # the pause after a build is at least this many times as long as the build


class Debouncer:
    """Coalesces bursts: ``due`` is true once after a change, and not more often than every ``interval_s``.

    Time is a parameter (a monotonic clock), so tests pass their own.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._dirty = False
        self._last: float | None = None

    def changed(self) -> None:
        self._dirty = True

    def due(self) -> bool:
        """True when there is a change to publish and the last publication is old enough; then resets."""
        now = self._clock()
        if not self._dirty or (self._last is not None and now - self._last < self.interval_s):
            return False
        self._dirty, self._last = False, now
        return True


class DashboardWorker:
    """Builds the dashboard on a thread of its own, so that file processing never waits for it.

    ``changed`` only marks the page stale and wakes the thread, which rebuilds it (``build``) at most
    once every ``interval_s`` (``Debouncer``). A failed build is logged and retried at the next change.
    ``close`` stops the thread and, if a change is still unpublished, builds the page one last time on
    the caller's thread, so that ``wardbulk run --once`` leaves a page that shows its files.
    """

    def __init__(self, build: Callable[[], object], interval_s: float, clock: Callable[[], float]) -> None:
        self._build = build
        self._interval_s = interval_s
        self._debouncer = Debouncer(interval_s, clock)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._pending = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="wardbulk-dashboard", daemon=True)
        self._thread.start()

    def changed(self) -> None:
        self._pending = True
        self._debouncer.changed()
        self._wake.set()

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_TIMEOUT_S)
            if self._thread.is_alive():  # a build stuck on the database or a share: never a 2nd writer
                log.warning("dashboard_build_still_running", waited_s=CLOSE_TIMEOUT_S)
                return
            self._thread = None
        if self._pending:
            self._build_logged()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            # Asleep until a change; with one waiting for its turn, until the interval has passed (at
            # least RETRY_S, so that a build that keeps failing is not retried in a busy loop).
            self._wake.wait(timeout=max(self._interval_s, RETRY_S) if self._pending else None)
            self._wake.clear()
            if not self._stopping.is_set() and self._debouncer.due():
                self._build_logged()

    def _build_logged(self) -> None:
        self._pending = False
        began = time.monotonic()
        try:
            self._build()
            # A page that takes long to build (a long history) is rebuilt less often: at most about
            # 1 / (LOAD_FACTOR + 1) of a core goes to it, whatever the history and the debounce.
            self._debouncer.interval_s = max(self._interval_s, LOAD_FACTOR * (time.monotonic() - began))
        except Exception:
            self._pending = True  # tried again after RETRY_S, at the next change, or on close
            self._debouncer.changed()
            log.exception("dashboard_failed")

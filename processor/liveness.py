"""The daemon's signs of life (issue 15), for ``wardbulk health`` and for systemd.

Two threads, both acting only while the daemon moves (its loop turns, or the file in hand passes a
chunk boundary, within ``STALL_AFTER_S``), so that a daemon stuck in a call falls silent:

- the pinger sends systemd ``WATCHDOG=1`` (when the unit has ``WatchdogSec``) and ``STATUS=`` changes;
  it never touches the database, so a slow database cannot get a healthy daemon killed;
- the beater refreshes the daemon's row in ``daemon_heartbeats`` every ``HEARTBEAT_S``, each write
  bounded to a short wait (SQLite's writer lock held by a long file, a PostgreSQL lock): a beat that
  cannot be written is skipped and logged once.

``READY=1`` is sent once the folders are watched, ``STOPPING=1`` as the daemon begins to stop. Only a
daemon that ends normally records a clean stop: a crash leaves its row as a silent daemon's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from processor.adapters import owners
from processor.adapters.database.daemons import (
    Beat,
    DaemonState,
    daemon_states,
    forget,
    forget_old,
    record_beat,
    record_stop,
)
from processor.adapters.systemd import SystemdNotifier
from processor.health import is_running
from processor.logs import get_logger
from processor.settings import Settings

log = get_logger(__name__)
HEARTBEAT_S = 15.0
STALL_AFTER_S = 120.0
JOIN_TIMEOUT_S = 10.0
PAUSED_STATUS = "paused: the host cannot take files now (see the log)"


class Liveness:
    """One daemon's heartbeat and systemd notifications (see the module)."""

    def __init__(
        self,
        engine: Engine,
        owner: str,
        clock: Callable[[], datetime],
        state: Callable[[], tuple[bool, int]],  # (paused by the host, files processed)
        notifier: SystemdNotifier | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        stall_after_s: float = STALL_AFTER_S,
    ) -> None:
        self._engine, self._owner, self._clock, self._state = engine, owner, clock, state
        self.notifier = notifier or SystemdNotifier()
        self._heartbeat_s, self._stall_after_s = heartbeat_s, stall_after_s
        self._moved = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started_at = clock()
        self._beat_failed = False
        self._status = ""  # what the daemon is doing ("watching 7 inbox folders")
        self._sent_status = ""  # the STATUS= systemd was last sent

    def moved(self) -> None:
        """The daemon made progress (its loop turned, a chunk was done)."""
        self._moved = time.monotonic()

    def start(self, forget_dead: bool = False) -> list[DaemonState]:
        """Forget long-gone daemons, beat once, and keep beating and pinging on threads. Returns the
        daemons of this host that died without stopping; with ``forget_dead`` (they are reported) their
        rows are forgotten, so each is reported once."""
        died: list[DaemonState] = []

        def forget_the_gone() -> None:
            now = self._clock()
            forget_old(self._engine, now)
            with self._engine.connect() as connection:
                died.extend(state for state in daemon_states(connection) if _died_here(state, now))
            if forget_dead:
                forget(self._engine, [state.owner for state in died])

        self._write(forget_the_gone)
        self._beat()
        self._threads = [threading.Thread(target=self._beat_while_moving, name="heartbeat", daemon=True)]
        if self.notifier.watchdog_s:
            pinger = threading.Thread(target=self._ping_while_moving, name="watchdog", daemon=True)
            self._threads.append(pinger)
        for thread in self._threads:
            thread.start()
        return died

    def ready(self, status: str) -> None:
        """The daemon watches its folders: systemd may consider the service started."""
        self._status = self._sent_status = status
        self.notifier.notify("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        """The daemon begins to stop (sent first, so that systemd knows while it finishes)."""
        self.notifier.notify("STOPPING=1", "STATUS=stopping")

    def stop(self, clean: bool) -> None:
        """Stop beating; with ``clean`` (the daemon ended normally) record the stop in its row."""
        self._stop.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT_S)  # a beat stuck in the database must not hold the exit
        if clean:
            self._write(lambda: record_stop(self._engine, self._owner, self._clock()))

    def _moving(self) -> bool:
        return time.monotonic() - self._moved <= self._stall_after_s

    def _ping_while_moving(self) -> None:
        interval = (self.notifier.watchdog_s or self._heartbeat_s) / 3
        while not self._stop.wait(interval):
            if self._moving():
                self.notifier.notify("WATCHDOG=1", *self._status_change())

    def _beat_while_moving(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            if self._moving():
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
        host = self._owner.split(":", 1)[0]
        beat = Beat(self._owner, host, self._started_at, self._clock(), paused, processed)
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


def _died_here(state: DaemonState, now: datetime) -> bool:
    """A daemon of this host that never recorded a stop and that ``health`` no longer sees running."""
    return state.stopped_at is None and owners.is_local(state.owner) and not is_running(state, now)


def serve_if_asked(engine: Engine, settings: Settings) -> Any:
    """The metrics server, when ``metrics_address`` asks for one (prometheus_client is loaded then);
    None when it does not. The caller ``shutdown()``s it."""
    address = settings.metrics_address
    if address is None:
        return None
    from processor.metrics import serve  # noqa: PLC0415

    try:
        server = serve(engine, settings, address)
    except (OSError, OverflowError) as exc:  # the port taken, say: the files matter more than metrics
        log.warning("metrics_not_served", address=address, error=type(exc).__name__)
        return None
    log.info("metrics_served", address=address)
    return server

"""The daemon's pause for the host's faults (issue 18): a full disk, a quota, a read-only share or a
database that cannot write is a pause, never a verdict on a file.

While paused the daemon claims no new file (those in the inbox keep their place in the queue) and files
already claimed wait, bound to their operations, nothing of them applied or all of it committed. At
growing intervals (1 s, doubled up to a minute) the pause checks whether the host can go on: each area
takes a small file (written, fsynced, removed) and, when the pause began for lack of room, the file at
the head of the queue fits. Then the daemon goes on: recovery first (the waiting files, in arrival
order), then the queue.

An episode is logged once when it begins (``outbox_unwritable``, ``database_unwritable`` or
``waiting_for_space``: the area, its folder, the error's name and the free bytes, never a cell value),
and once when the host can go on (``host_writable_again``). A fault met again before any file got
through belongs to the same episode: it is not logged again, and the wait keeps growing.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from processor.adapters.storage import HostAreas, Shortage, free_bytes, probe, shortage_for
from processor.errors import DatabaseError
from processor.logs import get_logger
from processor.pipeline.faults import host_os_error

log = get_logger(__name__)
FIRST_WAIT_S = 1.0
LONGEST_WAIT_S = 60.0


@dataclass
class HostPause:
    """Whether the daemon may take files now (see the module). Thread-safe: the publisher reports its
    faults here too."""

    areas: HostAreas
    owner_token: str
    reserve_bytes: int
    monotonic: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _since: float | None = None
    _next_check: float = 0.0
    _wait_s: float = FIRST_WAIT_S
    _episode_logged: bool = False
    _room_for: tuple[Path, int] | None = None  # the file that did not fit (and its size), if that paused

    @property
    def paused(self) -> bool:
        """Whether the daemon is to take no file now."""
        return self._since is not None

    @property
    def next_check_at(self) -> float | None:
        """When (on the monotonic clock) the host is looked at next; None when not paused."""
        return self._next_check if self._since is not None else None

    def host_fault(self, exc: BaseException, step: str) -> None:
        """Pause after ``exc``, a fault of the host met at ``step`` (claiming, processing, publishing,
        recovery)."""
        with self._lock:
            self._begin()
            if not self._episode_logged:
                self._episode_logged = True
                self._log_fault(exc, step)

    def no_room(self, shortage: Shortage, path: Path, size: int, file: str) -> None:
        """Pause before claiming the file at ``path`` (``size`` bytes, shown as ``file``): its filesystem
        lacks room (``shortage``)."""
        with self._lock:
            self._begin()
            self._room_for = (path, size)
            if not self._episode_logged:
                self._episode_logged = True
                log.error(
                    "waiting_for_space",
                    area=shortage.area,
                    path=str(shortage.path),
                    file=file,
                    needed_bytes=shortage.needed,
                    free_bytes=shortage.free,
                )

    def shortage(self, size: int) -> Shortage | None:
        """Whether a file of ``size`` bytes lacks room in some area (see ``storage.shortage_for``)."""
        return shortage_for(size, self.areas, self.reserve_bytes)

    def may_go_on(self) -> bool:
        """True unless paused; while paused, checks the host when the wait is over and ends the pause
        when it can go on (logged). Until then False, and the next check waits twice as long."""
        with self._lock:
            if self._since is None:
                return True
            now = self.monotonic()
            if now < self._next_check:
                return False
            if not self._host_can_go_on():
                self._wait_s = min(LONGEST_WAIT_S, self._wait_s * 2)
                self._next_check = now + self._wait_s
                return False
            log.info("host_writable_again", paused_s=round(now - self._since, 1))
            self._since, self._room_for = None, None
            return True

    def succeeded(self) -> None:
        """A file went through: the next fault begins a new episode (logged, waits from the start).
        Not while paused: a file published during a pause does not end its episode."""
        with self._lock:
            if self._since is None:
                self._episode_logged = False
                self._wait_s = FIRST_WAIT_S

    def _begin(self) -> None:
        if self._since is None:
            self._since = self.monotonic()
            self._next_check = self._since + self._wait_s

    def _host_can_go_on(self) -> bool:
        """Every area takes a write, and the file that did not fit does now (or is gone: its sender took
        it back, or another daemon took it)."""
        try:
            if probe(self.areas, self.owner_token) is not None:
                return False
            if self._room_for is None or not self._room_for[0].exists():
                return True
            return self.shortage(self._room_for[1]) is None
        except OSError:  # the areas cannot even be looked at yet
            return False

    def _log_fault(self, exc: BaseException, step: str) -> None:
        error = host_os_error(exc, self.areas)
        if error is None:
            kind = "database_unwritable" if isinstance(exc, DatabaseError) else "host_unavailable"
            log.error(kind, step=step, error=type(exc).__name__)
            return
        area, folder = self._area_of(error)
        log.error(
            "outbox_unwritable",
            step=step,
            area=area,
            path=str(folder),
            error=errno.errorcode.get(error.errno or 0, type(error).__name__),
            free_bytes=_free_or_none(folder),
        )

    def _area_of(self, error: OSError) -> tuple[str, Path]:
        """The area whose folder holds the path ``error`` names (the outbox when it names none)."""
        if isinstance(error.filename, str | Path):
            named = Path(error.filename).absolute()
            for area, folder in self.areas.named():
                if named.is_relative_to(folder.absolute()):
                    return area, folder
        return "outbox", self.areas.outbox


def _free_or_none(folder: Path) -> int | None:
    try:
        return free_bytes(folder)
    except OSError:
        return None  # a share that is gone has no free space to tell

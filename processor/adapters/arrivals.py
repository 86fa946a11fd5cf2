"""The ordered queue of inbox files, by arrival, and the rule for when a file is complete.

Arrival is when this daemon first saw the file (files present at start: oldest modification first). A
file is ready when it was renamed into the folder, when its ``<name>.done`` marker exists (for operations
configured so; without a marker such a file has not arrived), or when its size and modification time
have not changed for the stability window, measured from first sight (copies keep old mtimes). An entry
that is not a regular file (a symlink, FIFO, directory…) is ready at once: it is refused unread, and no
wait makes it a file.
Files leave in arrival order: a file not yet ready holds back the files that arrived after it, so an
import dropped before an assignment naming its patients is applied first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path

from processor.adapters.inbox import InboxFile, can_have_done_marker, has_done_marker


@dataclass
class _Arrival:
    order: int
    file: InboxFile
    signature: tuple[int, int, bool]
    stable_since: float
    renamed_in: bool


def _signature(path: Path) -> tuple[int, int, bool] | None:
    """Size, modification time and whether it is a regular file, of the entry itself (never a symlink's
    target: a link to /dev/zero or to a file that grows must not hold the queue)."""
    try:
        status = os.lstat(path)
    except OSError:  # gone (claimed by another daemon, or removed by its sender), or unreachable now
        return None
    return (status.st_size, status.st_mtime_ns, stat.S_ISREG(status.st_mode))


class ArrivalQueue:
    """Inbox files in arrival order, released when ready. Not thread-safe: the daemon loop owns it."""

    def __init__(self, stability_window_s: float, needs_marker: Callable[[InboxFile], bool]) -> None:
        self._window = stability_window_s
        self._needs_marker = needs_marker
        self._arrivals: dict[Path, _Arrival] = {}
        self._order = count()

    def __len__(self) -> int:
        return len(self._arrivals)

    def offer(self, inbox_file: InboxFile, now: float, renamed_in: bool = False) -> None:
        """Note a sighting; a file seen before keeps its place in the queue."""
        known = self._arrivals.get(inbox_file.path)
        if known is not None:
            known.renamed_in = known.renamed_in or renamed_in
            return
        signature = _signature(inbox_file.path)
        if signature is None:
            return
        if self._waits_for_marker(inbox_file, signature) and not has_done_marker(inbox_file.path):
            return
        self._arrivals[inbox_file.path] = _Arrival(next(self._order), inbox_file, signature, now, renamed_in)

    def take_ready(self, now: float) -> list[InboxFile]:
        """Remove and return the ready files at the head of the queue, in arrival order."""
        ready = []
        for arrival in sorted(self._arrivals.values(), key=lambda a: a.order):
            signature = _signature(arrival.file.path)
            if signature is None:
                del self._arrivals[arrival.file.path]
                continue
            if not self._is_ready(arrival, signature, now):
                break
            del self._arrivals[arrival.file.path]
            ready.append(arrival.file)
        return ready

    def put_back(self, files: list[InboxFile]) -> None:
        """Return files taken by ``take_ready`` but not processed (the daemon paused): they go back to
        the head of the queue, in their order, ready as they were."""
        first = min((arrival.order for arrival in self._arrivals.values()), default=0)
        for place, inbox_file in enumerate(files, start=first - len(files)):
            signature = _signature(inbox_file.path)
            if signature is not None and inbox_file.path not in self._arrivals:
                self._arrivals[inbox_file.path] = _Arrival(place, inbox_file, signature, 0.0, renamed_in=True)

    def _is_ready(self, arrival: _Arrival, signature: tuple[int, int, bool], now: float) -> bool:
        if signature != arrival.signature:
            arrival.signature, arrival.stable_since, arrival.renamed_in = signature, now, False
        if arrival.renamed_in or self._waits_for_marker(arrival.file, signature) or not signature[2]:
            return True  # (a marker it waited for was there when it was offered)
        return now - arrival.stable_since >= self._window

    def _waits_for_marker(self, inbox_file: InboxFile, signature: tuple[int, int, bool]) -> bool:
        """A regular file of an operation configured for markers, with a name that can have one."""
        regular = signature[2]
        return regular and self._needs_marker(inbox_file) and can_have_done_marker(inbox_file.path)

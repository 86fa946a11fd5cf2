"""Watching the inbox folders with watchdog. Handlers only enqueue; the daemon's loop does the work.

``native`` uses inotify (local disks); ``polling`` compares directory snapshots, which also sees files
written by other hosts on network shares. Either way the daemon rescans periodically, because events
get lost (queue overflows, shares that report nothing).

A rename into a folder is reported as a move whether or not its source was watched, and at once:
watchdog holds every ``IN_MOVED_FROM`` back (0.5 s) to pair it with its ``IN_MOVED_TO``, and every later
event of that folder waits behind it. Each claim moves a file out of an inbox folder (an unpaired
``IN_MOVED_FROM``), so in a busy inbox new files were seen up to half a second late. The daemon needs only
where a file was renamed to, which the "full events" emitter reports also for an unpaired ``IN_MOVED_TO``.
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from processor.adapters.inbox import INPUT_SUFFIXES

WATCHED_EVENTS = ("created", "modified", "moved", "closed")
# Asked of the observer, so that the kernel does not report (and watchdog's threads do not handle) what
# the handler would drop anyway: opens, reads, deletions, and events of the folders themselves.
WATCHED_EVENT_TYPES: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    # A folder named like an input file is an entry to answer (the inbox refuses it); other folders are not.
    DirCreatedEvent,
    DirMovedEvent,
]


@dataclass(frozen=True)
class Sighting:
    """A path that may be a new or changed inbox file; ``renamed_in`` when it arrived by a rename."""

    path: Path
    renamed_in: bool


class _Enqueue(FileSystemEventHandler):
    def __init__(self, sightings: queue.Queue[Sighting], wake: Callable[[], None]) -> None:
        self._sightings = sightings
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        sighting = _sighting_of(event)
        if sighting is not None:
            self._sightings.put(sighting)
            self._wake()


def _sighting_of(event: FileSystemEvent) -> Sighting | None:
    if event.event_type not in WATCHED_EVENTS:
        return None
    if event.event_type == "moved":
        # An unpaired IN_MOVED_FROM (a file renamed out of the folder, e.g. claimed) has no destination.
        destination = str(event.dest_path or "")
        sighting = Sighting(Path(destination), renamed_in=True) if destination else None
    else:
        sighting = Sighting(Path(str(event.src_path)), renamed_in=False)
    if (
        sighting is not None
        and event.is_directory
        and not sighting.path.name.lower().endswith(INPUT_SUFFIXES)
    ):
        return None
    return sighting


def _native_observer() -> BaseObserver:
    """inotify with full, prompt move events on Linux; the platform's own observer elsewhere."""
    if not sys.platform.startswith("linux"):
        return Observer()
    # These modules exist on Linux only.
    from watchdog.observers.inotify import InotifyObserver  # noqa: PLC0415
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper  # noqa: PLC0415

    # Read when a watch's grouper is made; only the pairing of moves depends on it (module docstring).
    InotifyMoveEventGrouper.delay = 0.0
    observer: BaseObserver = InotifyObserver(generate_full_events=True)
    return observer


def start_watching(
    folders: list[Path],
    sightings: queue.Queue[Sighting],
    polling: bool,
    poll_interval_s: float,
    wake: Callable[[], None] = lambda: None,
) -> BaseObserver:
    """Start an observer on each folder (not recursive: the processing area must not be watched).

    Each sighting is put on ``sightings``, then ``wake`` is called (from the observer's thread).
    """
    observer = PollingObserver(timeout=poll_interval_s) if polling else _native_observer()
    handler = _Enqueue(sightings, wake)
    for folder in folders:
        observer.schedule(handler, str(folder), recursive=False, event_filter=WATCHED_EVENT_TYPES)
    observer.start()
    return observer

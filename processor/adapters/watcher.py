"""Watching the inbox folders with watchdog. Handlers only enqueue; the daemon's loop does the work.

``native`` uses inotify (local disks); ``polling`` compares directory snapshots, which also sees files
written by other hosts on network shares. Either way the daemon rescans periodically, because events
get lost (queue overflows, shares that report nothing).
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

WATCHED_EVENTS = ("created", "modified", "moved", "closed")


@dataclass(frozen=True)
class Sighting:
    """A path that may be a new or changed inbox file; ``renamed_in`` when it arrived by a rename."""

    path: Path
    renamed_in: bool


class _Enqueue(FileSystemEventHandler):
    def __init__(self, sightings: queue.Queue[Sighting]) -> None:
        self._sightings = sightings

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in WATCHED_EVENTS:
            return
        if event.event_type == "moved":
            self._sightings.put(Sighting(Path(str(event.dest_path)), renamed_in=True))
        else:
            self._sightings.put(Sighting(Path(str(event.src_path)), renamed_in=False))


def start_watching(
    folders: list[Path], sightings: queue.Queue[Sighting], polling: bool, poll_interval_s: float
) -> BaseObserver:
    """Start an observer on each folder (not recursive: the processing area must not be watched)."""
    observer: BaseObserver = PollingObserver(timeout=poll_interval_s) if polling else Observer()
    handler = _Enqueue(sightings)
    for folder in folders:
        observer.schedule(handler, str(folder), recursive=False)
    observer.start()
    return observer

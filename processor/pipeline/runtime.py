"""What runs beside a file while it is processed: the heartbeat for other hosts, and the collector's pause."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from processor.adapters.database.lifecycle import Lifecycle
from processor.logs import get_logger

log = get_logger(__name__)
# Allocations between young-generation collections while a file runs (Python's default is 700).
GC_YOUNG_THRESHOLD = 10_000


class Heartbeat:
    """While a file is processed, tell other hosts every ``interval_s`` that its owner is alive.

    PostgreSQL only: that is where daemons of several hosts share a database. (SQLite serves one host,
    where an owner's liveness is its pid; and its single writer lock would hold the beat back anyway.)
    """

    interval_s = 30.0

    def __init__(self, lifecycle: Lifecycle) -> None:
        self._lifecycle = lifecycle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self._lifecycle.engine.dialect.name == "postgresql":
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._lifecycle.beat()
            except Exception as exc:  # a missed beat is not fatal; the file's own writes will tell
                operation_id = self._lifecycle.operation_id
                log.warning("heartbeat_failed", operation_id=operation_id, error=type(exc).__name__)


@contextmanager
def collector_spares_the_heap() -> Iterator[None]:
    """While a file is processed, the garbage collector looks only at objects the file made.

    A file makes millions of short-lived rows; by default each collection of the oldest generation also
    walks every module, class and cached statement loaded before the file (hundreds of thousands of
    objects), which cost a quarter of an import's time. ``gc.freeze`` sets those aside for the file and
    ``gc.unfreeze`` hands them back, so nothing is kept from collection beyond the file.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()

"""The ``Publisher``: the daemon's thread that publishes committed files while the loop goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from processor.adapters.storage import NO_AREAS, HostAreas
from processor.logs import get_logger
from processor.pipeline.faults import is_host_fault
from processor.pipeline.publishing import Decided

log = get_logger(__name__)
MAX_UNPUBLISHED = 64  # files committed ahead of the publisher before the loop waits for it


class Publisher:
    """Publishes committed files on a thread of its own, in commit order, while the loop goes on.

    The loop hands over each file once its transaction has committed (``decide_claimed``); publishing it
    (renames into the outbox, their fsyncs, moving the input: ``publish_all``) then overlaps with the
    next file, and the files that queued up meanwhile are published as one batch, with one fsync per
    folder and step for all of them. Until then a committed file waits bound to its operation in the
    processing area: if the process dies first, recovery publishes it at the next start, as after any
    crash between a commit and the outbox. ``drain`` waits until all handed over is published.

    ``every_s``: a batch starts at least this long after the one before (unless ``drain`` or ``close``
    waits for it, or ``MAX_UNPUBLISHED`` files wait): while files keep coming, they are published a few
    at a time rather than one by one, and the publisher's directory fsyncs (each a journal commit of the
    file system, which the loop's own fsyncs and commits wait behind) do not come once per file. A file
    that comes after a quiet spell is published at once.
    """

    def __init__(
        self,
        publish: Callable[[list[Decided]], object],
        on_host_fault: Callable[[BaseException], None] = lambda _exc: None,
        areas: HostAreas = NO_AREAS,
        on_published: Callable[[], None] = lambda: None,
        every_s: float = 0.0,
    ) -> None:
        self._publish = publish
        self._on_host_fault = on_host_fault
        self._on_published = on_published
        self._areas = areas
        self._every_s = every_s
        self._next_start = 0.0  # time.monotonic() before which no batch starts unless asked for
        self._waiting: list[Decided] = []
        self._busy = False
        self._closed = False
        self._draining = 0  # callers of ``drain`` waiting
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def submit(self, decided: Decided) -> None:
        """Queue a committed file (waiting while ``MAX_UNPUBLISHED`` are queued already)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._waiting) < MAX_UNPUBLISHED)
            self._waiting.append(decided)
            self._changed.notify_all()

    def drain(self) -> None:
        """Return once every file submitted so far is published (or its publishing failed)."""
        with self._changed:
            self._draining += 1
            self._changed.notify_all()
            try:
                self._changed.wait_for(lambda: not self._waiting and not self._busy)
            finally:
                self._draining -= 1

    def close(self) -> None:
        """Publish what is left, then end the thread."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()

    def _next_batch(self) -> list[Decided]:
        """Everything queued, once there is something and its time has come (empty only when closed
        and done)."""
        with self._changed:
            self._changed.wait_for(lambda: bool(self._waiting) or self._closed)
            self._changed.wait_for(self._asked_for, timeout=self._next_start - time.monotonic())
            self._next_start = time.monotonic() + self._every_s
            batch, self._waiting = self._waiting, []
            self._busy = bool(batch)
            self._changed.notify_all()
            return batch

    def _asked_for(self) -> bool:
        """Whether a batch may not wait for its time (called holding the lock)."""
        return self._closed or self._draining > 0 or len(self._waiting) >= MAX_UNPUBLISHED

    def _run(self) -> None:
        while batch := self._next_batch():
            try:
                self._publish(batch)
                self._on_published()
            except Exception as exc:
                # Committed, still bound in the processing area: the next recovery publishes them.
                if is_host_fault(exc, self._areas):
                    self._on_host_fault(exc)  # a full outbox, say: the daemon pauses
                else:
                    log.exception("publish_failed", operation_ids=[d.job.operation_id for d in batch])
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

"""Signals turned into calls on an ordinary thread, so that a signal handler never does real work."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


class SignalRelay:
    """Signals turned into a call on a thread of its own, so that the handler itself only records them.

    The handler runs between two bytecodes of whatever the main thread was doing, possibly inside a
    lock or a logging call; doing real work there (a log line, ``Event.set`` with its lock) can deadlock
    or raise a reentrant-call error and lose the stop. So the C-level handler writes the signal number
    to a socket (``signal.set_wakeup_fd``), the Python-level handler does nothing, and this thread reads
    the number and calls ``on_signal(signum)``.
    """

    def __init__(self, on_signal: Callable[[int], None]) -> None:
        self._on_signal = on_signal
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._previous_fd: int | None = None
        self._previous_handlers: dict[signal.Signals, Any] = {}
        self._thread = threading.Thread(target=self._relay, name="signals", daemon=True)

    def install(self, signals: tuple[signal.Signals, ...]) -> None:
        """Handle ``signals`` (from the main thread, as Python requires)."""
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in signals:
            self._previous_handlers[signum] = signal.signal(signum, _record_only)
        self._thread.start()

    def uninstall(self) -> None:
        """Put the previous handlers and wakeup descriptor back; the relay thread ends with the socket."""
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd if self._previous_fd is not None else -1)
        self._writer.close()

    def _relay(self) -> None:
        while True:
            try:
                received = self._reader.recv(64)
            except OSError:
                return
            if not received:
                return
            for signum in received:
                self._on_signal(signum)


def _record_only(_signum: int, _frame: FrameType | None) -> None:
    """The Python-level handler: nothing to do, the wakeup descriptor already carries the signal."""

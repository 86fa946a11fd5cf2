"""systemd's notify protocol (``sd_notify``): when the daemon runs under a ``Type=notify`` unit, systemd
sets ``NOTIFY_SOCKET``, and the daemon sends it ``READY=1`` once it watches its folders, ``STATUS=...``
as its state changes, ``WATCHDOG=1`` while it is alive (``WATCHDOG_USEC``), and ``STOPPING=1``.

Without ``NOTIFY_SOCKET`` nothing is sent. A send that fails is logged once and never stops the daemon:
the watchdog then restarts it if it really is stuck.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from processor.logs import get_logger

log = get_logger(__name__)


class SystemdNotifier:
    """Sends notify messages to the socket systemd gave the process, if any."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with "@"; its real name starts with a NUL byte.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_s = _watchdog_interval(environ)
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *fields: str) -> None:
        """Send ``fields`` (``READY=1``, ``STATUS=...``) as one message; nothing without a socket."""
        if not self._address:
            return
        message = "\n".join(field.replace("\n", " ") for field in fields).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never blocks: a full queue (systemd busy, nobody reading) drops the message.
                sock.sendto(message, socket.MSG_DONTWAIT, self._address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("systemd_notify_failed", error=type(exc).__name__)


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Seconds within which systemd expects ``WATCHDOG=1``, if it watches this very process."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000

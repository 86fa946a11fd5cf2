"""Who owns a claimed file or an unfinished operation, and whether that owner is gone.

An owner is ``<hostname>:<pid>``. On the same host the process table is the truth: the owner is gone
when its pid is. Another host's owner is gone when it has not given a sign of life (a heartbeat, or for
a bare claim the time of the claiming rename) for ``STALE_AFTER``.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

STALE_AFTER = timedelta(minutes=10)


def this_process() -> str:
    """The owner name of the running process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_abandoned(owner: str | None, last_sign_of_life: datetime | None, now: datetime) -> bool:
    """True when ``owner`` can no longer finish its work, so another process may take it over."""
    if not owner:
        return True
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        # This very process is between files whenever it recovers: what it owns is left from an
        # interrupted attempt.
        return int(pid) == os.getpid() or not pid_alive(int(pid))
    return last_sign_of_life is None or last_sign_of_life < now - STALE_AFTER

"""Who owns a claimed file or an unfinished operation, and whether that owner is gone.

An owner is ``<hostname>:<pid>:<process start time>:<pid namespace>``. When the hostname and the pid
namespace are ours, the process table is the truth: the owner is gone when no process has its pid with
its start time (so a reused pid does not keep a dead owner alive, and a container with the same
hostname but its own pid namespace is not judged by our table). Any other owner is gone when it has given
no sign of life (a heartbeat, or for a bare claim the time of the claiming rename) for ``STALE_AFTER``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from datetime import datetime, timedelta
from functools import cache

STALE_AFTER = timedelta(minutes=10)


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (clock ticks since boot), None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@cache
def _pid_namespace() -> str:
    try:
        return "".join(ch for ch in os.readlink("/proc/self/ns/pid") if ch.isdigit()) or "0"
    except OSError:
        return "0"


def owner_of_pid(pid: int) -> str:
    """The owner name of a process of this host (its start time is 0 when it has exited)."""
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or 0}:{_pid_namespace()}"


def this_process() -> str:
    """The owner name of the running process."""
    return owner_of_pid(os.getpid())


def token(owner: str) -> str:
    """A short, file-name-safe tag of an owner, for the names of its temporary files."""
    return hashlib.sha256(owner.encode()).hexdigest()[:10]


def is_local(owner: str) -> bool:
    """Whether ``owner`` is a process of this host and pid namespace (its process table is the truth)."""
    parts = owner.split(":")
    return len(parts) == 4 and parts[0] == socket.gethostname() and parts[3] == _pid_namespace()


def is_abandoned(owner: str | None, last_sign_of_life: datetime | None, now: datetime) -> bool:
    """True when ``owner`` can no longer finish its work, so another process may take it over."""
    parts = (owner or "").split(":")
    if len(parts) == 4 and parts[0] == socket.gethostname() and parts[3] == _pid_namespace():
        pid, start = int(parts[1]), parts[2]
        # This very process is between files whenever it recovers: what it owns is left over.
        return pid == os.getpid() or _start_time(pid) != start
    return last_sign_of_life is None or last_sign_of_life < now - STALE_AFTER

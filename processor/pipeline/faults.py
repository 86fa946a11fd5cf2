"""The one table that maps what a file's processing raised to what becomes of the file.

====================  ==========================================  =========================================
raised                disposition                                 what happens
====================  ==========================================  =========================================
FileRejected          ``REJECT``: the file's own problem          failed with its code; it goes to rejected/
Interrupted           ``STOP``: a graceful stop                   rolled back; pending, claimed, redone later
OwnershipLost         ``LOST``: another process took the file     nothing more is done here
DatabaseUnavailable,  ``RETRY``: transient (locked, connection    retried with backoff; after the last
DatabaseConflict,     lost, a key or a bed taken meanwhile)       attempt failed with ``database-error``
ConcurrentChange
DatabaseRefused       ``REFUSED``: the database refused the file  failed with ``database-error``
host OSError,         ``WAIT``: the host's fault (disk full,      the file waits, claimed, until the host
DatabaseStorageFull   read-only, gone; see ``host_os_error``)     can write again (the daemon's pause)
anything else         ``CRASH``: a defect, or an entry no rule    failed with ``internal-error``
                      knew
====================  ==========================================  =========================================

A host ``OSError`` may come wrapped (raised while handling another, or as another's cause): the whole
chain is looked at. ``EACCES`` and ``EPERM`` are the host's only where wardbulk writes (the outbox, the
archive, its own temporary files in the processing area, ``HostAreas``); reading a sender's file that
cannot be read is that file's problem.

The database adapters raise the project's ``processor.errors.DatabaseError`` types (httpx style); a
SQLAlchemy error that reached here untranslated is translated first, so the table is the same for it.
Outside a file's attempts (registering, publishing, recovery) the test is ``is_host_fault``: the
database unavailable or a host ``OSError`` waits; anything else is that one file's trouble.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from processor.adapters.database.operation_records import OwnershipLost
from processor.adapters.storage import NO_AREAS, HostAreas
from processor.core.problems import Code, FileRejected
from processor.errors import (
    ConcurrentChange,
    DatabaseConflict,
    DatabaseRefused,
    DatabaseStorageFull,
    DatabaseUnavailable,
)
from processor.logs import scrub
from processor.pipeline.context import Interrupted


class Disposition(Enum):
    """What becomes of a file after an exception (see the module's table)."""

    REJECT = "reject"
    STOP = "stop"
    LOST = "lost"
    RETRY = "retry"
    REFUSED = "refused"
    WAIT = "wait"
    CRASH = "crash"


# OS errors that say the host cannot go on now (its disks, its memory, a share), whatever file it holds.
HOST_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EIO,
        errno.ENOMEM,
        errno.ENFILE,
        errno.EMFILE,
        errno.ESTALE,
        errno.ENOTCONN,
        errno.EHOSTDOWN,
        errno.ETIMEDOUT,
    }
)


# Refused permissions: the host's fault where wardbulk writes (a share remounted, a folder's mode changed).
PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})


def host_os_error(exc: BaseException, areas: HostAreas = NO_AREAS) -> OSError | None:
    """The ``OSError`` that makes ``exc`` a fault of the host, looking through the chain of causes and
    contexts: an errno of ``HOST_ERRNOS``, or a refused permission where wardbulk writes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and _is_the_hosts(current, areas):
            return current
        current = current.__cause__ or current.__context__
    return None


def _is_the_hosts(error: OSError, areas: HostAreas) -> bool:
    if error.errno in HOST_ERRNOS:
        return True
    if error.errno not in PERMISSION_ERRNOS:
        return False
    names = (name for name in (error.filename, error.filename2) if isinstance(name, str | Path))
    return any(areas.written_by_wardbulk(Path(name).absolute()) for name in names)


def _instance_of(*kinds: type[BaseException]) -> Callable[[BaseException, HostAreas], bool]:
    return lambda exc, _areas: isinstance(exc, kinds)


def _of_the_host(exc: BaseException, areas: HostAreas) -> bool:
    return host_os_error(exc, areas) is not None


# In order: the first that matches decides.
DISPOSITIONS: tuple[tuple[Callable[[BaseException, HostAreas], bool], Disposition], ...] = (
    (_instance_of(FileRejected), Disposition.REJECT),
    (_instance_of(Interrupted), Disposition.STOP),
    (_instance_of(OwnershipLost), Disposition.LOST),
    (_instance_of(DatabaseStorageFull), Disposition.WAIT),
    (_instance_of(DatabaseUnavailable, DatabaseConflict, ConcurrentChange), Disposition.RETRY),
    (_instance_of(DatabaseRefused), Disposition.REFUSED),
    (_of_the_host, Disposition.WAIT),
)


def disposition_of(exc: BaseException, areas: HostAreas = NO_AREAS) -> Disposition:
    """What becomes of the file whose processing raised ``exc``; ``areas``: where wardbulk writes."""
    if isinstance(exc, DBAPIError):  # untranslated: judged as the adapters would have raised it
        exc = _as_translated(exc)
    for matches, disposition in DISPOSITIONS:
        if matches(exc, areas):
            return disposition
    return Disposition.CRASH


def is_host_fault(exc: BaseException, areas: HostAreas = NO_AREAS) -> bool:
    """Whether ``exc`` is the host's trouble (the database unavailable, a disk full or read-only),
    which waiting cures, rather than the file's own, which no retry would."""
    if isinstance(exc, DBAPIError):
        exc = _as_translated(exc)
    unavailable = DatabaseUnavailable | OperationalError | InterfaceError
    return isinstance(exc, unavailable) or _of_the_host(exc, areas)


def _as_translated(exc: DBAPIError) -> BaseException:
    from processor.adapters.database.translation import translated  # noqa: PLC0415 (a rare path)

    return translated(exc, None)


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own error under SQLAlchemy's wrapper and the project's translation, if any."""
    if isinstance(exc.__cause__, DBAPIError) and not isinstance(exc, DBAPIError):
        exc = exc.__cause__
    return exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc


def database_failure(exc: BaseException) -> FileRejected:
    """The ``database-error`` rejection for ``exc``: the driver's first line, scrubbed of values."""
    cause = _driver_error(exc)
    text = scrub(str(cause)).strip()
    first_line = text.splitlines()[0] if text else ""
    return FileRejected.single(
        Code.DATABASE_ERROR,
        f"the database refused the file ({type(cause).__name__}: {first_line}); nothing was applied",
    )


def retry_reason(exc: BaseException) -> str:
    """The exception's class name for a log line (the driver's own, not SQLAlchemy's wrapper)."""
    return type(_driver_error(exc)).__name__

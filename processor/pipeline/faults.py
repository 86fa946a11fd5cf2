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
host OSError          ``WAIT``: the host's fault (disk full,      the file waits, claimed, for recovery
                      read-only, gone; ``HOST_ERRNOS``)
anything else         ``CRASH``: a defect, or an entry no rule    failed with ``internal-error``
                      knew
====================  ==========================================  =========================================

The database adapters raise the project's ``processor.errors.DatabaseError`` types (httpx style); a
SQLAlchemy error that reached here untranslated is translated first, so the table is the same for it.
Outside a file's attempts (registering, publishing, recovery) the test is ``is_host_fault``: the
database unavailable or a host ``OSError`` waits; anything else is that one file's trouble.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from enum import Enum

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from processor.adapters.database.operation_records import OwnershipLost
from processor.core.problems import Code, FileRejected
from processor.errors import ConcurrentChange, DatabaseConflict, DatabaseRefused, DatabaseUnavailable
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


def _is_host_os_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in HOST_ERRNOS


def _instance_of(*kinds: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, kinds)


# In order: the first that matches decides.
DISPOSITIONS: tuple[tuple[Callable[[BaseException], bool], Disposition], ...] = (
    (_instance_of(FileRejected), Disposition.REJECT),
    (_instance_of(Interrupted), Disposition.STOP),
    (_instance_of(OwnershipLost), Disposition.LOST),
    (_instance_of(DatabaseUnavailable, DatabaseConflict, ConcurrentChange), Disposition.RETRY),
    (_instance_of(DatabaseRefused), Disposition.REFUSED),
    (_is_host_os_error, Disposition.WAIT),
)


def disposition_of(exc: BaseException) -> Disposition:
    """What becomes of the file whose processing raised ``exc``."""
    if isinstance(exc, DBAPIError):  # untranslated: judged as the adapters would have raised it
        exc = _as_translated(exc)
    for matches, disposition in DISPOSITIONS:
        if matches(exc):
            return disposition
    return Disposition.CRASH


def is_host_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is the host's trouble (the database unavailable, a disk full or read-only),
    which waiting cures, rather than the file's own, which no retry would."""
    unavailable = DatabaseUnavailable | OperationalError | InterfaceError
    return isinstance(exc, unavailable) or _is_host_os_error(exc)


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

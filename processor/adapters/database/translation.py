"""SQLAlchemy's errors translated into the project's (``processor.errors``) at the database adapter's edge.

OperationalError and InterfaceError (unreachable, connection lost, locked) become ``DatabaseUnavailable``,
and ``DatabaseStorageFull`` when the database's storage cannot take a write (``storage_is_full``);
IntegrityError ``DatabaseConflict``; any other DB-API error ``DatabaseRefused``.
Messages name the database by its URL, password masked, and give the driver's first line, scrubbed.
(SQLite's driver reports a syntax error as an OperationalError too: on SQLite that reads as unavailable,
and a file meeting it is retried, then failed with ``database-error``; no data is lost either way.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from processor.adapters.database.engine import failure_reason
from processor.errors import (
    DatabaseConflict,
    DatabaseError,
    DatabaseRefused,
    DatabaseStorageFull,
    DatabaseUnavailable,
)

# SQLite's primary result codes for storage that cannot take a write: SQLITE_READONLY, SQLITE_IOERR,
# SQLITE_CANTOPEN, SQLITE_FULL (extended codes keep the primary one in their low byte).
SQLITE_STORAGE_CODES = frozenset({8, 10, 13, 14})
# PostgreSQL's SQLSTATEs: disk full, out of memory, I/O error, a read-only transaction (a standby).
POSTGRESQL_STORAGE_STATES = frozenset({"53100", "53200", "58030", "25006"})

P = ParamSpec("P")
R = TypeVar("R")


def translated(exc: DBAPIError, url: URL | None) -> DatabaseError:
    """The project's error for ``exc`` (raise it ``from exc``), naming the database at ``url``."""
    database = url.render_as_string(hide_password=True) if url is not None else "(unnamed)"
    reason = failure_reason(exc, url)
    if storage_is_full(exc):
        return DatabaseStorageFull(f"database {database} cannot write now: {reason}")
    if isinstance(exc, OperationalError | InterfaceError):
        return DatabaseUnavailable.failed(database, reason)
    if isinstance(exc, IntegrityError):
        return DatabaseConflict(f"database {database}: a concurrent change conflicted: {reason}")
    return DatabaseRefused(f"database {database} refused a statement: {reason}")


def storage_is_full(exc: DBAPIError) -> bool:
    """Whether the driver says that the database's storage cannot take a write (full, read-only, I/O)."""
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in SQLITE_STORAGE_CODES
    return getattr(exc.orig, "sqlstate", None) in POSTGRESQL_STORAGE_STATES


@contextmanager
def database_errors_translated(engine: Engine) -> Iterator[None]:
    """Within the block, SQLAlchemy's DB-API errors raise as the project's (see the module docstring)."""
    try:
        yield
    except DBAPIError as exc:
        raise translated(exc, engine.url) from exc


def translates_database_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate an adapter function whose first argument is the ``Engine`` it works on."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        engine = args[0]
        assert isinstance(engine, Engine)
        with database_errors_translated(engine):
            return function(*args, **kwargs)

    return wrapper

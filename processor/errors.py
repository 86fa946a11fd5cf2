"""The exception tree. Row problems are values (``RowError``); only file and system problems raise.

::

    WardbulkError                 raised on purpose; the CLI prints one line, never a traceback
    ├── ConfigError               a bad configuration key or file (exit code 2)
    ├── UsageError                a bad command-line request, e.g. an unknown operation (exit code 2)
    └── DatabaseUnavailable  ─┐   the database cannot be reached or was lost, is locked or out of space,
                              │   was never initialised (only ``wardbulk init`` creates one), or cannot
                              │   be migrated (exit code 3); waiting may cure it
    DatabaseError  ───────────┤   any failure of a database operation, translated at the adapter edge
    ├── DatabaseUnavailable ──┘   (both a WardbulkError and a DatabaseError)
    ├── DatabaseConflict          a concurrent writer got there first (a unique key taken meanwhile):
    │                             validating the file again may succeed
    │   └── ConcurrentChange      a chunk's conditional update changed fewer rows than it validated
    │                             (a bed taken by another daemon since): validate the file again
    └── DatabaseRefused           the database refused a statement (a value it rejects, a defect): no
                                  retry helps; not raised on purpose, so the CLI treats it as internal

The database adapters translate SQLAlchemy's errors into these at their edges, httpx style (the
driver's error stays the ``__cause__``): opening a connection, reading the schema revision, migrating,
every ``operation_records`` function, and whatever a unit of work's block raised. Above the adapters no
module needs SQLAlchemy's exception types; ``cli.main`` still maps a stray OperationalError or
InterfaceError to ``DatabaseUnavailable`` as a last line.

Messages never carry cell values from an input file: they name files, lines, columns and error codes.
They never carry a password either: a database is named by its URL with the password masked.
"""

from __future__ import annotations


class WardbulkError(Exception):
    """Base of every deliberate wardbulk failure. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(WardbulkError):
    """The configuration file or an environment override is invalid."""

    exit_code = 2


class UsageError(WardbulkError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = 2


class DatabaseError(Exception):
    """A database operation failed; the driver's own error is the ``__cause__``."""


class DatabaseConflict(DatabaseError):
    """A concurrent writer got there first (an integrity error on a key another file just took)."""


class ConcurrentChange(DatabaseConflict):
    """The database changed under a chunk since it was validated (another daemon admitted a patient to
    the same bed, say): an operation's store found fewer rows to change than it validated. Nothing of the
    file is committed; the pipeline validates it again."""


class DatabaseRefused(DatabaseError):
    """The database refused a statement: a value it rejects, or a defect. Retrying does not help."""


class DatabaseUnavailable(WardbulkError, DatabaseError):
    """The database could not be reached, was never initialised, or could not be brought to the current
    schema. ``database`` is its URL with the password masked; ``reason`` one line, without values.
    """

    exit_code = 3

    @classmethod
    def unreachable(cls, database: str, reason: str) -> DatabaseUnavailable:
        return cls(f"database {database} is unreachable: {reason}")

    @classmethod
    def not_initialised(cls, database: str) -> DatabaseUnavailable:
        return cls(f"database {database} is not initialised; run `wardbulk init` first")

    @classmethod
    def migration_failed(cls, database: str, reason: str) -> DatabaseUnavailable:
        return cls(f"database {database} could not be migrated: {reason}")

    @classmethod
    def failed(cls, database: str, reason: str) -> DatabaseUnavailable:
        return cls(f"database {database} failed during the command: {reason}")


class DatabaseStorageFull(DatabaseUnavailable):
    """The database's own storage cannot take a write now: its disk or quota is full, it is read-only
    (a read-only mount, a standby), or its files cannot be written (an I/O error). The host's fault, not
    the file's: the file waits, claimed, until the database can write again (issue 18)."""

"""The exception tree. Row problems are values (``RowError``); only file and system problems raise.

::

    WardbulkError                 raised on purpose; the CLI prints one line, never a traceback
    ├── ConfigError               a bad configuration key or file (exit code 2)
    ├── UsageError                a bad command-line request, e.g. an unknown operation (exit code 2)
    └── DatabaseUnavailable       the database cannot be reached, was never initialised (only
                                  ``wardbulk init`` creates one), or cannot be migrated (exit code 3)

SQLAlchemy's errors become ``DatabaseUnavailable`` at the database adapter's edges (opening a connection,
reading the schema revision, migrating) and, for an OperationalError or InterfaceError in the middle of
a command, in ``cli.main``. Inside, the pipeline keeps SQLAlchemy's types: its retries depend on them.

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


class DatabaseUnavailable(WardbulkError):
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

"""The exception tree. Row problems are values (``RowError``); only file and system problems raise.

::

    WardbulkError                 raised on purpose; the CLI prints one line, never a traceback
    ├── ConfigError               a bad configuration key or file (exit code 2)
    ├── UsageError                a bad command-line request, e.g. an unknown operation (exit code 2)
    └── DatabaseUnavailable       the database cannot be reached or migrated (exit code 3)

Messages never carry cell values from an input file: they name files, lines, columns and error codes.
"""


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
    """The database could not be reached, opened or brought to the current schema."""

    exit_code = 3

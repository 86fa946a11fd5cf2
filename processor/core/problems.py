"""Problems found in an input file, as values, and the stable error codes they carry.

Codes are kebab-case words other systems match on; never rename one. Frictionless names where one fits.
``Code`` holds the codes of files and those several operations share; a code only one operation writes
is declared in its room (``transfer_patients.rules.TransferCode``), a ``StrEnum`` like ``Code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Code(StrEnum):
    """Every error code wardbulk writes into errors.csv and summary.json."""

    # File-level: the file is rejected as a whole.
    NOT_A_REGULAR_FILE = "not-a-regular-file"
    FILE_UNREADABLE = "file-unreadable"
    FILE_CHANGED = "file-changed"
    NOT_CSV = "not-csv"
    UNSUPPORTED_WORKBOOK = "unsupported-workbook"
    FILE_TOO_LARGE = "file-too-large"
    EMPTY_FILE = "empty-file"
    ENCODING_ERROR = "encoding-error"
    MALFORMED_CSV = "malformed-csv"
    FIELD_TOO_LARGE = "field-too-large"
    MISSING_LABEL = "missing-label"
    DUPLICATE_LABEL = "duplicate-label"
    DUPLICATE_FILE = "duplicate-file"
    TOO_MANY_ERRORS = "too-many-errors"
    ROW_ERRORS = "row-errors"
    DATABASE_ERROR = "database-error"
    INTERNAL_ERROR = "internal-error"
    AMBIGUOUS_SENDER = "ambiguous-sender"
    UNKNOWN_SENDER = "unknown-sender"
    # Row-level: the row is skipped and reported.
    MISSING_CELL = "missing-cell"
    EXTRA_CELL = "extra-cell"
    TYPE_ERROR = "type-error"
    CONSTRAINT_ERROR = "constraint-error"
    CONTROL_CHARACTER = "control-character"
    AMBIGUOUS_DATE = "ambiguous-date"
    DUPLICATE_EMAIL = "duplicate-email"
    DUPLICATE_PATIENT_ID = "duplicate-patient-id"
    # Row-level codes of the ward operations.
    UNKNOWN_PATIENT = "unknown-patient"
    UNKNOWN_BED = "unknown-bed"
    UNKNOWN_WARD = "unknown-ward"
    BED_NOT_AVAILABLE = "bed-not-available"
    BED_OCCUPIED = "bed-occupied"
    ALREADY_ADMITTED = "already-admitted"
    NOT_ADMITTED = "not-admitted"


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one cell or row. ``line`` is the physical line where the record starts (header = 1).

    ``value`` is the offending cell as read; it goes to errors.csv (Excel-safe) and never to a log.
    """

    line: int | None
    column: str
    code: StrEnum  # a ``Code``, or one of an operation's own codes
    message: str
    value: str = ""


class FileRejected(Exception):
    """A problem with the file as a whole: nothing of it is applied.

    ``problems`` are the lines of errors.csv (several for, say, three missing columns); the first one's
    code is the file's ``error_code``.
    """

    def __init__(self, problems: list[RowError]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems

    @classmethod
    def single(cls, code: Code, message: str, line: int | None = None, column: str = "") -> FileRejected:
        """A rejection for one problem."""
        return cls([RowError(line=line, column=column, code=code, message=message)])

    @property
    def code(self) -> Code:
        """The file's error code: its first problem's (file-level problems carry ``Code`` members)."""
        return Code(self.problems[0].code)

    @property
    def message(self) -> str:
        return "; ".join(problem.message for problem in self.problems)

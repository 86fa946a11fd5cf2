"""The decisions taken without reading a file's rows: its type, name, size, readability; and the policy
applied to the rows' errors once they are counted."""

from __future__ import annotations

from pathlib import Path

from processor.adapters import entries, xlsx_input
from processor.adapters.inbox import INPUT_SUFFIXES, ClaimedFile
from processor.core.problems import Code, FileRejected
from processor.settings import OperationSettings, Settings


def precheck(claimed: ClaimedFile, settings: Settings) -> FileRejected | None:
    """Problems found without reading the rows: its type (by its name, then by its first bytes), its
    size, whether it can be read."""
    if not claimed.is_regular_file:
        return not_a_regular_file()
    refused = xlsx_input.suffix_problem(claimed.original_name)
    if refused is not None:
        return refused
    if Path(claimed.original_name).suffix.lower() not in INPUT_SUFFIXES:
        return FileRejected.single(
            Code.NOT_CSV, "only .csv and .xlsx files are accepted; save the sheet as CSV UTF-8 or as .xlsx"
        )
    if claimed.size > settings.max_file_bytes:
        return FileRejected.single(
            Code.FILE_TOO_LARGE,
            f"the file has {claimed.size} bytes; the limit is {settings.max_file_bytes} (max_file_bytes)",
        )
    return _unreadable_or_disguised(claimed)


def not_a_regular_file() -> FileRejected:
    """The rejection of a symlink, folder, FIFO, socket or device: never opened, never followed."""
    return FileRejected.single(
        Code.NOT_A_REGULAR_FILE,
        "not a regular file (a symlink, folder, FIFO, socket or device); it was not opened or followed: "
        "drop the file itself",
    )


def _unreadable_or_disguised(claimed: ClaimedFile) -> FileRejected | None:
    """A rejection when the file cannot be opened (its permissions, say), or when its first bytes say
    it is not what its name says (an .xls named .xlsx, a workbook named .csv); None when it is fine."""
    try:
        with entries.open_input(claimed.path) as handle:
            head = handle.read(xlsx_input.HEAD_BYTES)
    except entries.NotRegularFile:
        return not_a_regular_file()
    except OSError as exc:
        return FileRejected.single(
            Code.FILE_UNREADABLE,
            f"wardbulk cannot read the file ({entries.error_name(exc)}: {exc.strerror}); "
            "make it readable by the daemon's user and send it again",
        )
    return xlsx_input.content_problem(claimed.original_name, head)


def sha256_if_readable(claimed: ClaimedFile, max_bytes: int) -> str | None:
    """The file's SHA-256; None when it is refused unread anyway (too large, not a file, unreadable)."""
    if claimed.size > max_bytes:
        return None
    try:
        return entries.sha256_of(claimed.path)
    except (entries.NotRegularFile, PermissionError):
        return None  # ``precheck`` says why, in the file's summary


def policy_rejection(settings: OperationSettings, failed: int, total: int) -> FileRejected | None:
    """The rejection ``on_row_error`` and ``max_error_rate`` ask for, given the rows' error counts."""
    if failed and settings.on_row_error == "reject_file":
        return FileRejected.single(
            Code.ROW_ERRORS,
            f"{failed} of {total} rows have errors and on_row_error is reject_file; nothing was applied",
        )
    if total and failed / total > settings.max_error_rate:
        return FileRejected.single(
            Code.TOO_MANY_ERRORS,
            f"{failed} of {total} rows have errors, more than max_error_rate "
            f"{settings.max_error_rate:.0%}; nothing was applied",
        )
    return None

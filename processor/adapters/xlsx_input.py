"""Reading an Excel workbook (.xlsx) as the records of a CSV file (issue 14).

Contract of ``read_xlsx``:

- One sheet is read: the configured ``sheet`` (its name, without regard to case, as Excel compares
  names), else the first worksheet. It is streamed (openpyxl's read-only mode, an XML pull parser),
  formulas as the values Excel last computed (a formula never computed reads as an empty cell).
- Every ``line`` is the physical row number in the sheet (header = its own row). Blank rows are skipped,
  also before the header, as blank lines are in a CSV; a short row is padded with empty cells, since a
  spreadsheet does not store the empty cells at a row's end.
- Cells become the text a CSV export would hold, so that the rows' own checks apply unchanged: text as
  Excel meant it (``_x000D_`` is a carriage return, so a control character is caught as in a CSV); a date
  cell at midnight ``YYYY-MM-DD``, with a time ``YYYY-MM-DDTHH:MM:SS``; a whole number without ``.0``
  (phones and MRNs stored as numbers), zero-padded when its format is only zeros (``00000``, Excel's way
  of showing an MRN's leading zeros); other numbers as their shortest text; ``TRUE``/``FALSE``.
- The header and row rules are CSV's (``csv_reading.read_table``); the limits too: a cell over
  ``MAX_FIELD_CHARS`` is ``field-too-large``, and a sheet wider than ``MAX_COLUMNS`` is refused.
- A workbook that would unpack to more than ``unpacked_bound`` bytes is refused (``file-too-large``)
  before anything in it is parsed. Old (.xls), password-protected, macro-enabled and damaged workbooks
  are ``unsupported-workbook``, decided by the bytes as well as the name.

openpyxl is imported when a workbook is read, so that CSV-only commands never pay for its import.
defusedxml, which openpyxl then uses for all its XML, refuses entity expansion ("billion laughs").
No cell value reaches an exception message or a log: openpyxl's own errors become fixed messages.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from pathlib import PurePosixPath
from typing import Any, BinaryIO
from xml.etree.ElementTree import ParseError

from processor.core.csv_reading import (
    MAX_FIELD_CHARS,
    ColumnSpec,
    CsvFile,
    Record,
    field_too_large,
    is_blank,
    read_table,
)
from processor.core.problems import Code, FileRejected, RowError

WORKBOOK_SUFFIX = ".xlsx"
HEAD_BYTES = 8  # enough for either magic number below
OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")  # .xls, and every encrypted (password) Office file
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
MAX_COLUMNS = 1_000  # an operation has a dozen columns; beyond this a sheet is not a table of ours
# The unpacked bound: XML compresses 5 to 15 times in real workbooks, so 40 times the file's size leaves
# wide room, while a zip bomb unpacks a thousand times and more. The floor lets a small, very repetitive
# sheet through; the ceiling bounds the parse time and the shared-string table (held in memory by
# openpyxl), whatever max_file_bytes allows: 1 GiB of XML holds some two million rows of ten cells,
# and Excel itself stops at 1,048,576 rows.
UNPACKED_FLOOR = 64 * 1024 * 1024
UNPACKED_RATIO = 40
UNPACKED_CEILING = 1024 * 1024 * 1024
# The errors a damaged or hostile workbook makes openpyxl, zipfile or the XML parser raise (defusedxml's
# refusals are ValueErrors). Their texts may quote the file's content, so they are never passed on.
# (NotImplementedError: a member packed in a way zipfile cannot unpack; RuntimeError: an encrypted
# member.) An OSError without an errno (openpyxl's "no valid workbook part", a renamed .docx) is the
# file's too; one with an errno is the host's, and goes on to the pipeline's fault handling.
DAMAGED = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ParseError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    NotImplementedError,
    RuntimeError,
)
# Excel keeps 15 significant digits: a whole number from 10**15 on may not be the one typed (an MRN or
# a phone number typed as a number), so it is an error of its row, never an identifier guessed at.
EXACT_DIGITS = 15
EXCEL_ERROR = "the cell holds an Excel error such as #N/A or #REF! (a broken formula?): correct it"
INEXACT_NUMBER = (
    f"the number has more digits than Excel keeps exactly ({EXACT_DIGITS}): format the column as text, "
    "type the value again, and send the row again"
)
ZERO_PADDED = re.compile(r"0+")
# How OOXML writes a character XML cannot hold (a control character, often a CR): _x000D_. An underscore
# that starts such a pattern is itself written _x005F_. openpyxl leaves inline strings as they are, and
# drops the _x005F_ of shared strings before we see them: a cell whose text is literally "_x0041_" (rare)
# then reads as "A". Decoding here still catches every control character a cell holds.
ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
MIDNIGHT = time()

SAVE_AS = "save it from Excel as Excel Workbook (.xlsx), or as CSV UTF-8"
OLD_OR_LOCKED = (
    "the file is an old-format (.xls) or password-protected Excel workbook, which wardbulk cannot read: "
    "save it from Excel as Excel Workbook (.xlsx) without a password, or as CSV UTF-8"
)
MACROS = f"macro-enabled and binary workbooks (.xlsm, .xlsb, or a VBA project inside) are not read: {SAVE_AS}"
NOT_A_WORKBOOK = f"the file is named .xlsx but is not a readable Excel workbook (damaged?): {SAVE_AS}"
ZIP_AS_CSV = (
    "the file is named .csv but is a workbook or another zip file: name it .xlsx, or save it as CSV UTF-8"
)
REFUSED_SUFFIXES = {".xls": OLD_OR_LOCKED, ".xlsm": MACROS, ".xlsb": MACROS}


def is_workbook(name: str) -> bool:
    """Whether a file of this name is read as a workbook (.xlsx) rather than as a CSV."""
    return PurePosixPath(name).suffix.lower() == WORKBOOK_SUFFIX


def suffix_problem(name: str) -> FileRejected | None:
    """The refusal of a workbook kind wardbulk does not read, by its name alone (.xls, .xlsm, .xlsb)."""
    message = REFUSED_SUFFIXES.get(PurePosixPath(name).suffix.lower())
    return None if message is None else _unsupported(message)


def content_problem(name: str, head: bytes) -> FileRejected | None:
    """The refusal of a file whose first bytes (``HEAD_BYTES``) say it is not what its name says: an
    .xls or encrypted workbook under any name, an .xlsx that is not a zip, a .csv that is one."""
    return _head_problem(head, is_workbook(name))


def _head_problem(head: bytes, workbook: bool) -> FileRejected | None:
    if head.startswith(OLE2_MAGIC):
        return _unsupported(OLD_OR_LOCKED)
    is_zip = head.startswith(ZIP_MAGICS)
    if workbook:
        return None if is_zip else _unsupported(NOT_A_WORKBOOK)
    return _unsupported(ZIP_AS_CSV) if is_zip else None


def unpacked_bound(size: int) -> int:
    """The most a workbook of ``size`` bytes may unpack to (see ``UNPACKED_RATIO``)."""
    return min(UNPACKED_CEILING, max(UNPACKED_FLOOR, UNPACKED_RATIO * size))


def read_xlsx(
    raw: BinaryIO,
    spec: ColumnSpec,
    sheet: str | None = None,
    column_of: Callable[[str], str] | None = None,
) -> CsvFile:
    """The header (checked as a CSV header is) and lazy records of one sheet of the workbook ``raw``
    (open, seekable, binary); see the module. Raises ``FileRejected`` for a file-level problem, now or
    while the records are read. ``column_of``: a sender's aliases, as for ``read_csv``.

    The records close the workbook when exhausted; the caller closes ``raw``.
    """
    _check_container(raw)
    workbook = _open_workbook(raw)
    problems: dict[int, list[tuple[int, str]]] = {}
    try:
        rows = _sheet_rows(_chosen_sheet(workbook, sheet), problems)
        header_line, labels = _header(rows)
        problems.clear()  # the header's own cells are labels, checked as labels
        table = read_table(labels, header_line, _padded(rows, len(labels)), spec, ",", column_of)
    except BaseException:
        workbook.close()
        raise
    names = [column_of(label) if column_of else label.lower() for label in table.labels]
    table.records = _closing(_with_cell_problems(table.records, problems, names), workbook)
    return table


def _check_container(raw: BinaryIO) -> None:
    """Refuse, before any XML is parsed: not a zip, a VBA project inside, or too much to unpack."""
    size = raw.seek(0, os.SEEK_END)
    raw.seek(0)
    problem = _head_problem(raw.read(HEAD_BYTES), workbook=True)
    raw.seek(0)
    if problem is not None:
        raise problem
    try:
        with zipfile.ZipFile(raw) as archive:
            members = archive.infolist()
    except DAMAGED:
        raise _unsupported(NOT_A_WORKBOOK) from None
    if any(PurePosixPath(member.filename).name.lower() == "vbaproject.bin" for member in members):
        raise _unsupported(MACROS)
    # zipfile never yields more than a member's declared size (it stops there, then checks the CRC),
    # so the declared sizes bound what parsing can meet, whatever the compressed bytes hold.
    unpacked, bound = sum(member.file_size for member in members), unpacked_bound(size)
    if unpacked > bound:
        raise FileRejected.single(
            Code.FILE_TOO_LARGE,
            f"the workbook unpacks to {unpacked} bytes, more than the {bound} allowed for a file of its "
            f"size ({UNPACKED_RATIO} times, at least {UNPACKED_FLOOR}, at most {UNPACKED_CEILING}): "
            "split it, or save it as CSV UTF-8",
        )


def _open_workbook(raw: BinaryIO) -> Any:
    """The workbook in read-only mode: parts parsed when read, formulas as their last computed values."""
    import openpyxl  # type: ignore[import-untyped]  # noqa: PLC0415  (see the module: import time)

    if not openpyxl.DEFUSEDXML:  # OPENPYXL_DEFUSEDXML=False in the environment, or not installed
        raise RuntimeError("defusedxml is required to read workbooks safely; install it")
    # openpyxl's warnings may quote a cell ("the serial value 123456789 is outside the limits"), and
    # warnings go to stderr, the daemon's log: none of them is shown.
    warnings.filterwarnings("ignore", module=r"openpyxl(\..*)?$")
    try:
        return openpyxl.load_workbook(raw, read_only=True, data_only=True, keep_links=False)
    except DAMAGED:
        raise _unsupported(NOT_A_WORKBOOK) from None
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise _unsupported(NOT_A_WORKBOOK) from None


def _chosen_sheet(workbook: Any, name: str | None) -> Any:
    """The configured sheet (names compared as Excel does, without case), else the first worksheet.
    Sheet names are not patient data: the refusal lists them, to say what the setting could be."""
    sheets = list(workbook.worksheets)  # worksheets only: a chart sheet has no rows
    if name is None:
        if not sheets:
            raise FileRejected.single(Code.EMPTY_FILE, "the workbook has no worksheet")
        return sheets[0]
    for sheet in sheets:
        if sheet.title.casefold() == name.casefold():
            return sheet
    titles = ", ".join(repr(sheet.title) for sheet in sheets[:20])
    raise _unsupported(
        f"the workbook has no sheet named {name!r} (the sheet setting); its sheets are {titles}: "
        "rename the sheet, or change the setting"
    )


def _physical_rows(worksheet: Any) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """Every row of the sheet with its number, empty rows included (openpyxl fills the gaps)."""
    worksheet.reset_dimensions()  # a stale <dimension> would cut rows off; read to the real end
    rows = iter(worksheet.iter_rows(values_only=False))
    line = 0
    while True:
        line += 1
        try:
            cells = next(rows)
        except StopIteration:
            return
        except (*DAMAGED, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise
            raise _unsupported(f"the sheet cannot be read from row {line} on (damaged?): {SAVE_AS}") from None
        yield line, cells


def _sheet_rows(
    worksheet: Any, problems: dict[int, list[tuple[int, str]]]
) -> Iterator[tuple[int, list[str]]]:
    """The rows as texts, without the empty cells at their ends; refuses what breaks a limit. A cell
    whose text cannot stand for its value is put in ``problems`` (line → [(cell index, message)])."""
    for line, cells in _physical_rows(worksheet):
        texts = [_cell_text(cell) for cell in cells]
        flagged = [(index, message) for index, cell in enumerate(cells) if (message := _cell_problem(cell))]
        if flagged:
            problems[line] = flagged
        while texts and not texts[-1]:
            texts.pop()
        if len(texts) > MAX_COLUMNS:
            raise _unsupported(
                f"row {line} has a value in column {len(texts)}; wardbulk reads at most {MAX_COLUMNS} "
                "columns: delete what lies to the right of the table",
                line,
            )
        if texts and max(map(len, texts)) > MAX_FIELD_CHARS:
            raise field_too_large(line)
        yield line, texts


def _header(rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    """The first row that is not blank, and its number."""
    for line, texts in rows:
        if not is_blank(texts):
            return line, texts
    raise FileRejected.single(Code.EMPTY_FILE, "the sheet is empty")


def _padded(rows: Iterator[tuple[int, list[str]]], width: int) -> Iterator[tuple[int, list[str]]]:
    """Rows at least as wide as the header: a sheet has no short rows, only cells left empty."""
    for line, texts in rows:
        if len(texts) < width:
            texts.extend([""] * (width - len(texts)))
        yield line, texts


def _cell_problem(cell: Any) -> str | None:
    """Why a cell's text cannot be taken as its value: an Excel error, a number Excel did not keep
    exactly. None for every other cell."""
    if cell.data_type == "e":
        return EXCEL_ERROR
    value = cell.value
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 10**EXACT_DIGITS:
        return INEXACT_NUMBER
    return None


def _with_cell_problems(
    records: Iterator[Record], problems: dict[int, list[tuple[int, str]]], names: list[str]
) -> Iterator[Record]:
    """The records, each with a ``type-error`` per flagged cell of its row (see ``_cell_problem``)."""
    for record in records:
        for index, message in problems.pop(record.line, ()):
            column = names[index] if index < len(names) else ""
            value = record.raw[index] if index < len(record.raw) else ""
            record.errors.append(
                RowError(record.line, column, Code.TYPE_ERROR, f"{column} {message}".strip(), value)
            )
        yield record


def _closing(records: Iterator[Any], workbook: Any) -> Iterator[Any]:
    try:
        yield from records
    finally:
        workbook.close()


def _cell_text(cell: Any) -> str:
    """A cell's text, as the module says (the cell's number format matters only to whole numbers)."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, str):
        return ESCAPED.sub(_unescaped, value) if "_x" in value else value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return _number_text(value, cell.number_format)
    return _value_text(value)


def _value_text(value: object) -> str:
    """The text of a date, time or other value (an Excel date cell reads as a datetime)."""
    if isinstance(value, datetime):
        if value.time() == MIDNIGHT:
            return value.date().isoformat()
        return value.isoformat(timespec="seconds")
    if isinstance(value, time):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)  # a duration ([h]:mm), or whatever a later openpyxl may return


def _unescaped(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16))


def _number_text(value: float, number_format: str) -> str:
    if isinstance(value, float) and not value.is_integer():
        return repr(value)  # the shortest text that reads back as the same number
    whole = int(value)
    if whole >= 0 and ZERO_PADDED.fullmatch(number_format):
        return str(whole).zfill(len(number_format))
    return str(whole)


def _unsupported(message: str, line: int | None = None) -> FileRejected:
    return FileRejected.single(Code.UNSUPPORTED_WORKBOOK, message, line=line)

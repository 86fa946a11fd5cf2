"""Reading CSV records from lines of bytes: decoding, dialect, header and strict parsing. Pure: no I/O.

Contract:

- UTF-8 with or without BOM is always accepted; a configured fallback encoding (e.g. cp1252) is used
  for lines that are not valid UTF-8; anything else is ``encoding-error`` with the line.
- The delimiter (comma, semicolon or tab) is the one that splits the header into the most known columns.
- Header labels are trimmed and case-insensitive; a missing required column is ``missing-label`` and a
  repeated one ``duplicate-label`` (both reject the file); unknown columns are reported, then ignored.
- Parsing is strict: an unterminated quote rejects the file (``malformed-csv``), never swallowing the rest.
  Quoted newlines are fine; every ``line`` is the physical line where the record starts (header = 1).
- Blank lines (also lines of only delimiters and spaces) are skipped. A short row is ``missing-cell``, a
  row with extra non-empty cells ``extra-cell``; NUL and other control characters are
  ``control-character``. A cell longer than ``MAX_FIELD_CHARS`` rejects the file (``field-too-large``).

The header and row rules after parsing are ``read_table``'s, which a spreadsheet reader shares
(``adapters.xlsx_input``): its rows come split into cells already, with their physical row numbers.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain

from processor.core.problems import Code, FileRejected, RowError

MAX_FIELD_CHARS = 100_000
DELIMITERS = (",", ";", "\t")
UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
SAVE_AS_HINT = 'save the file from Excel as "CSV UTF-8 (Comma delimited)"'
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ColumnSpec:
    """The columns an operation reads: required ones must be in the header, optional ones may be."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def known(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a microsecond a row
class Record:
    """One data record: ``cells`` by normalised column name (known columns only), ``raw`` as read."""

    line: int
    cells: dict[str, str]
    raw: list[str]
    errors: list[RowError] = field(default_factory=list)


@dataclass
class CsvFile:
    """A header that passed the checks, and the records after it (a one-pass iterator)."""

    labels: list[str]
    delimiter: str
    unknown_columns: list[str]
    records: Iterator[Record]


@dataclass
class Decoding:
    """What reading a file found about its bytes: a UTF-8 byte order mark, and whether some line was
    not UTF-8 and needed the fallback encoding. ``encoding`` is how to write text back as it came."""

    fallback: str = "utf-8"
    bom: bool = False
    fallback_used: bool = False

    @property
    def encoding(self) -> str:
        """The fallback if a line needed it, else UTF-8 (its byte order mark is ``bom``)."""
        return self.fallback if self.fallback_used else "utf-8"


def decode_lines(
    raw_lines: Iterable[bytes], fallback_encoding: str = "utf-8", seen: Decoding | None = None
) -> Iterator[str]:
    """Decode physical lines strictly: UTF-8 first, then ``fallback_encoding`` if it is another one.
    ``seen``, if given, learns what the file's bytes were (``Decoding``)."""
    fallback = codecs.lookup(fallback_encoding).name
    seen = seen if seen is not None else Decoding()
    seen.fallback = fallback
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1:
            seen.bom = raw.startswith(UTF8_BOM)
        yield _decode_line(_without_bom(raw) if number == 1 else raw, number, seen)


def _without_bom(first_line: bytes) -> bytes:
    if first_line.startswith(UTF16_BOMS):
        raise FileRejected.single(
            Code.ENCODING_ERROR, f"the file is UTF-16, which is not supported: {SAVE_AS_HINT}", line=1
        )
    return first_line.removeprefix(UTF8_BOM)


def _decode_line(raw: bytes, number: int, seen: Decoding) -> str:
    fallback = seen.fallback
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        if fallback != "utf-8":
            try:
                line = raw.decode(fallback)
            except UnicodeDecodeError:
                pass
            else:
                seen.fallback_used = True
                return line
    raise FileRejected.single(
        Code.ENCODING_ERROR,
        f"line {number} is not valid UTF-8"
        + (f" nor {fallback}" if fallback != "utf-8" else "")
        + f": {SAVE_AS_HINT}",
        line=number,
    )


def read_csv(
    lines: Iterator[str],
    spec: ColumnSpec,
    delimiter: str | None = None,
    column_of: Callable[[str], str] | None = None,
) -> CsvFile:
    """Parse the header (rejecting the file if it is unusable) and return the records lazily.

    ``delimiter``: the sender's, instead of the one the header shows; ``column_of``: the column a header
    label names (a sender's aliases), instead of the label lower-cased.
    """
    csv.field_size_limit(MAX_FIELD_CHARS)
    skipped = 0
    for header_line in lines:
        if header_line.strip(" \t\r\n,;"):
            break
        skipped += 1
    else:
        raise FileRejected.single(Code.EMPTY_FILE, "the file is empty")
    header_at = skipped + 1
    delimiter = delimiter or _choose_delimiter(header_line, spec, header_at, column_of or str.lower)
    reader = csv.reader(chain([header_line], lines), delimiter=delimiter, strict=True)
    labels = _header_row(reader, header_at)
    return read_table(labels, header_at, _csv_rows(reader, skipped), spec, delimiter, column_of)


def read_table(
    labels: list[str],
    header_line: int,
    rows: Iterator[tuple[int, list[str]]],
    spec: ColumnSpec,
    delimiter: str = ",",
    column_of: Callable[[str], str] | None = None,
) -> CsvFile:
    """Check a header already split into cells and return the records of the rows after it, lazily.

    Whatever splits a file into cells (a CSV parser, a spreadsheet reader) shares these rules: labels
    trimmed, ``missing-label`` and ``duplicate-label`` reject the file, unknown columns are reported,
    blank rows are skipped, and each record carries its shape and control-character errors. ``rows``
    are ``(physical line, cells)``; ``delimiter`` is only recorded (how to write the rows back).
    """
    labels = [label.strip() for label in labels]
    names = [column_of(label) if column_of else label.lower() for label in labels]
    _check_header(names, spec, header_line)
    unknown = [label for label, name in zip(labels, names, strict=True) if name and name not in spec.known]
    records = _records(rows, names, spec)
    return CsvFile(labels=labels, delimiter=delimiter, unknown_columns=unknown, records=records)


def is_blank(row: list[str]) -> bool:
    """A row with no cell but spaces (a blank line, or one of only delimiters): skipped, never a record."""
    return not "".join(row).strip()


def field_too_large(line: int) -> FileRejected:
    """The rejection of a file with a cell over ``MAX_FIELD_CHARS`` (memory stays bounded per row)."""
    return FileRejected.single(
        Code.FIELD_TOO_LARGE, f"a cell is longer than {MAX_FIELD_CHARS} characters", line=line
    )


def _choose_delimiter(header_line: str, spec: ColumnSpec, line: int, column_of: Callable[[str], str]) -> str:
    def known_columns(delimiter: str) -> int:
        labels = next(csv.reader([header_line], delimiter=delimiter), [])
        return sum(column_of(label.strip()) in spec.known for label in labels)

    try:
        return max(DELIMITERS, key=known_columns)  # ties keep the earlier, so comma wins
    except csv.Error as exc:
        raise _parse_error(exc, line) from None


def _check_header(names: list[str], spec: ColumnSpec, line: int) -> None:
    problems = [
        RowError(line, name, Code.DUPLICATE_LABEL, f"column {name!r} appears more than once in the header")
        for name in dict.fromkeys(n for n in names if n and names.count(n) > 1)
    ]
    problems += [
        RowError(line, name, Code.MISSING_LABEL, f"required column {name!r} is missing from the header")
        for name in spec.required
        if name not in names
    ]
    if problems:
        raise FileRejected(problems)


def _header_row(reader: Iterator[list[str]], line: int) -> list[str]:
    try:
        return next(reader)
    except csv.Error as exc:
        raise _parse_error(exc, line) from None


def _parse_error(exc: csv.Error, line: int) -> FileRejected:
    if "field larger than field limit" in str(exc):
        return field_too_large(line)
    return FileRejected.single(
        Code.MALFORMED_CSV,
        f"the CSV cannot be parsed from line {line} on ({exc}); check for an unclosed quote",
        line=line,
    )


def _csv_rows(reader: Iterator[list[str]], offset: int) -> Iterator[tuple[int, list[str]]]:
    """The parsed rows with the physical line each starts on (``offset``: blank lines before the header)."""
    while True:
        start = reader.line_num + 1 + offset  # type: ignore[attr-defined]
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _parse_error(exc, start) from None
        yield start, row


def _records(rows: Iterator[tuple[int, list[str]]], names: list[str], spec: ColumnSpec) -> Iterator[Record]:
    known = [(index, name) for index, name in enumerate(names) if name in spec.known]
    # Excel leaves empty labels after the last column; rows may omit the cells under them.
    width = max((index + 1 for index, name in enumerate(names) if name), default=0)
    full = len(names)
    for line, row in rows:
        joined = "".join(row)  # once per row: the blank test and the control-character scan share it
        if not joined.strip():
            continue
        if len(row) == full and not _CONTROL.search(joined):  # the usual row: nothing to report
            yield Record(line, {name: row[index] for index, name in known}, row, [])
            continue
        cells = {name: row[index] if index < len(row) else "" for index, name in known}
        yield Record(line=line, cells=cells, raw=row, errors=_shape_errors(row, names, width, line))


def _shape_errors(row: list[str], names: list[str], width: int, line: int) -> list[RowError]:
    errors: list[RowError] = []
    if len(row) < width:
        errors.append(
            RowError(
                line,
                names[len(row)],
                Code.MISSING_CELL,
                f"the row has {len(row)} cells but the header has {width}",
            )
        )
    elif len(row) > len(names) and any(cell.strip() for cell in row[len(names) :]):
        errors.append(
            RowError(
                line, "", Code.EXTRA_CELL, f"the row has {len(row)} cells but the header has {len(names)}"
            )
        )
    if _CONTROL.search("".join(row)):
        errors += [
            RowError(
                line,
                names[i] if i < len(names) else "",
                Code.CONTROL_CHARACTER,
                "the cell contains a NUL or control character",
                cell,
            )
            for i, cell in enumerate(row)
            if _CONTROL.search(cell)
        ]
    return errors

"""A sender's own file shape, translated into wardbulk's (issue 14): what a Mirth channel's transformer
does, declared in the configuration (``[[senders]]``) instead of programmed.

- Column aliases: a header label names a column of the operation (``MRN`` → ``patient_id``), matched
  without regard to case or spaces (``Date of Birth``, ``dateofbirth``).
- Value maps: a cell's value replaced by wardbulk's (``Male`` → ``M``), matched without regard to case or
  surrounding spaces; values not in the map are left as they are, for the row's own checks.
- Date formats: an explicit list (``%d/%m/%Y``), never guessed. A date cell that reads as exactly one
  date under the list is written as ISO 8601; one that reads as two different dates (``05/06/1980``
  under ``%d/%m/%Y`` and ``%m/%d/%Y``) is an error of its row (``ambiguous-date``), never a guess; one
  that matches none is left as it is, for the row's own check to report.

Pure: the configuration builds a ``SenderShape``, reading applies it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from processor.core.csv_reading import Record
from processor.core.problems import Code, RowError


def label_key(label: str) -> str:
    """How a header label or an alias is compared: no case, no spaces."""
    return "".join(label.split()).lower()


def value_key(value: str) -> str:
    """How a cell is compared with a value map's keys: no case, no surrounding spaces."""
    return value.strip().lower()


@dataclass(frozen=True)
class SenderShape:
    """What one sender's files look like, as the reading needs it."""

    name: str
    aliases: Mapping[str, str] = field(default_factory=dict)  # label_key(alias) → column
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # column → value_key → value
    date_formats: tuple[str, ...] = ()
    delimiter: str | None = None

    def column_of(self, label: str) -> str:
        """The column a header label names: its alias's column, else the label itself, lower-cased."""
        return self.aliases.get(label_key(label), label.strip().lower())

    def translated(self, records: Iterator[Record], date_columns: tuple[str, ...]) -> Iterator[Record]:
        """The records with the sender's values and dates in wardbulk's form (see the module)."""
        dated = date_columns if self.date_formats else ()
        for record in records:
            cells = record.cells
            for column, mapping in self.values.items():
                cell = cells.get(column)
                if cell is not None and value_key(cell) in mapping:
                    cells[column] = mapping[value_key(cell)]
            for column in dated:
                cell = cells.get(column)
                if cell and cell.strip():
                    cells[column] = self._iso_date(record, column, cell)
            yield record

    def _iso_date(self, record: Record, column: str, cell: str) -> str:
        readings = sorted(set(_dates(cell.strip(), self.date_formats)))
        if len(readings) == 1:
            return readings[0].isoformat()
        if len(readings) > 1:
            choices = " or ".join(reading.isoformat() for reading in readings)
            message = f"the date could be {choices} under the sender's date formats: write it unambiguously"
            record.errors.append(RowError(record.line, column, Code.AMBIGUOUS_DATE, message, cell))
        return cell


def _dates(text: str, formats: tuple[str, ...]) -> Iterator[date]:
    """The dates ``text`` reads as, one per format that reads it wholly: the format written back must
    give the same numbers (``5/6/1980`` is ``05/06/1980``), so that a format without separators cannot
    split digits two ways (``1980123`` is not 1980-12-03 under ``%Y%m%d``)."""
    for date_format in formats:
        try:
            reading = datetime.strptime(text, date_format).date()
        except ValueError:
            continue
        if _numbers(reading.strftime(date_format)) == _numbers(text):
            yield reading


def _numbers(text: str) -> list[int]:
    return [int(group) for group in re.findall(r"\d+", text)]

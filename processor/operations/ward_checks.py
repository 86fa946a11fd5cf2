"""Checks the operations share: row model validation, "same as line N", lookups by identifier.

A chunk's rows are parsed by ``parse_rows``: a ``RowForm`` first checks the chunk column by column with
plain Python over the row model's own patterns and limits (``map`` over C functions, chunk-wide
``min``/``max``), and only the rows it cannot certainly accept go through the pydantic row model, which
stays the reference: it alone says what is wrong with a row. The fast path's contract, pinned by a
differential test (tests/test_ward_fast_path.py): it never accepts a row the model rejects, and the row
it gives holds exactly the values the model's would.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, ValidationError

from processor.core.column_checks import column_of, not_unicode, outside
from processor.core.csv_reading import Record
from processor.core.fields import (
    EARLIEST_EVENT_YEAR,
    FLAG_VALUES,
    ISO_DATETIME,
    present_cells,
    row_errors,
)
from processor.core.problems import Code, RowError
from processor.operations.base import RowOutcome, RunContext
from processor.operations.ports import (
    CareEvent,
    CaregiverNotifier,
    FirstLineIndex,
    NotificationLine,
    PatientState,
)


def parse_row(model: type[BaseModel], record: Record, context: RunContext) -> Any:
    """The row model of ``record``, or the RowErrors that stop it."""
    if record.errors:
        return record.errors
    try:
        cells = present_cells(record.cells)
        return model.model_validate(cells, context=context.validation)
    except ValidationError as exc:
        return row_errors(exc, record.line, record.cells)


# The row models' text limits (``fields.RequiredCode``, ``RequiredText``, ``OptionalLongText``).
CODE_MAX, TEXT_MAX, LONG_TEXT_MAX = 64, 200, 4000
# ``fields.OptionalText`` has no limit of its own (sync_beds checks what the registry can hold itself).
NO_LIMIT = sys.maxsize

# A column's check: its trimmed cells ("" for an empty or absent one) and the run, to the values the row
# model would hold and the indexes of the cells it is not certain the model accepts.
ColumnCheck = Callable[[list[str], RunContext], tuple[list[Any], set[int]]]


@dataclass(frozen=True)
class RowForm:
    """A row model and, field by field in the model's order, the fast check of its column.

    ``fields`` is a NamedTuple class with the model's field names: the fast path's row, read by the
    operation exactly as the model's instance is.
    """

    model: type[BaseModel]
    fields: type[NamedTuple]
    checks: tuple[ColumnCheck, ...]

    def __post_init__(self) -> None:
        names = tuple(self.model.model_fields)
        if self.fields._fields != names or len(self.checks) != len(names):
            raise TypeError(f"{self.fields.__name__} must list {self.model.__name__}'s fields in order")


def parse_rows(form: RowForm, records: Sequence[Record], context: RunContext) -> list[tuple[Record, Any]]:
    """Each record, in order, with what ``parse_row`` gives for it: its row (``form.fields`` from the
    fast path, or the model's instance), or the RowErrors that stop it."""
    if not records:
        return []
    cells = [record.cells for record in records]
    referred = {index for index, record in enumerate(records) if record.errors}
    columns = []
    for name, check in zip(form.fields._fields, form.checks, strict=True):
        trimmed = list(map(str.strip, column_of(cells, name)))
        values, unsure = check(trimmed, context)
        columns.append(values)
        referred |= unsure | not_unicode(trimmed)
    rows: list[Any] = list(map(form.fields._make, zip(*columns, strict=True)))
    for index in referred:
        rows[index] = parse_row(form.model, records[index], context)
    return list(zip(records, rows, strict=True))


def required_text(limit: int) -> ColumnCheck:
    """A required text cell of at most ``limit`` characters (``fields.max_length``; pydantic counts
    characters as ``len`` does): the value as trimmed."""

    def check(values: list[str], _context: RunContext) -> tuple[list[Any], set[int]]:
        return values, outside(values, 1, limit)

    return check


def optional_text(limit: int) -> ColumnCheck:
    """An optional text cell of at most ``limit`` characters: ``None`` when empty."""

    def check(values: list[str], _context: RunContext) -> tuple[list[Any], set[int]]:
        return [value or None for value in values], outside(values, 0, limit)

    return check


def optional_choice(choices: tuple[str, ...]) -> ColumnCheck:
    """``fields.one_of``: a cell among ``choices`` compared lower-case, the value lower-case."""

    def check(values: list[str], _context: RunContext) -> tuple[list[Any], set[int]]:
        lowered = [value.lower() or None for value in values]
        return lowered, {i for i, value in enumerate(lowered) if value is not None and value not in choices}

    return check


def optional_flag(values: list[str], _context: RunContext) -> tuple[list[Any], set[int]]:
    """``fields.OptionalFlag``: ``FLAG_VALUES`` of the lower-cased cell, ``None`` when empty."""
    flags = [FLAG_VALUES.get(value.lower(), _UNSURE) if value else None for value in values]
    return flags, {index for index, flag in enumerate(flags) if flag is _UNSURE}


def optional_past_datetime(values: list[str], context: RunContext) -> tuple[list[Any], set[int]]:
    """``fields.OptionalPastDateTime``: ISO date or date-time from ``EARLIEST_EVENT_YEAR`` up to the
    run's ``now``; without an offset, the wards' local time converted to UTC."""
    zone, now = context.zone, context.now
    moments = [_past_moment(value, zone, now) if value else None for value in values]
    return moments, {index for index, moment in enumerate(moments) if moment is _UNSURE}


_UNSURE: Any = object()  # a cell's value when the fast path is not certain the model accepts it


def _past_moment(value: str, zone: tzinfo, now: datetime) -> Any:
    """``fields._iso_datetime_not_future`` without its errors: the moment, or ``_UNSURE``."""
    if not ISO_DATETIME.match(value):
        return _UNSURE
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.year < EARLIEST_EVENT_YEAR:
            return _UNSURE
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=zone).astimezone(UTC)
        return parsed if parsed <= now else _UNSURE
    except (ValueError, OverflowError):  # the model raises these as it does; the fast path does not
        return _UNSURE


def cell_error(record: Record, column: str, code: StrEnum, message: str) -> RowError:
    """A RowError about one cell of ``record``, carrying the cell as read."""
    return RowError(record.line, column, code, message, record.cells.get(column, ""))


def admission_problem(record: Record, patient: PatientState | None) -> RowError | None:
    """For a row about a stay: unknown-patient, not-admitted, or a constraint-error when the patient's
    bed does not record the patient (the registry must be corrected first)."""
    if patient is None:
        return cell_error(record, "patient_id", Code.UNKNOWN_PATIENT, "patient_id is not a known patient")
    if patient.admission_id is None:
        return cell_error(record, "patient_id", Code.NOT_ADMITTED, "the patient has no active admission")
    if patient.bed_patient_id != patient.id:
        return cell_error(
            record,
            "patient_id",
            Code.CONSTRAINT_ERROR,
            f"bed {patient.bed_code} does not record this patient; correct the bed registry first",
        )
    return None


@dataclass
class FirstLines:
    """Fails later rows of the same identifier "same as line N", chunk by chunk.

    The first lines live in the run's ``FirstLineIndex`` (on disk in the pipeline), so memory does not
    grow with the file: ``claim`` looks up a whole chunk's identifiers, then ``check`` answers per row.
    """

    column: str
    code: StrEnum
    index: FirstLineIndex
    earlier_line: dict[int, int] = field(default_factory=dict)  # this chunk's repeats: line → first line

    def claim(self, keyed_lines: list[tuple[str, int]]) -> None:
        """Look up a chunk's identifiers, in file order, before its rows are checked."""
        firsts = self.index.claim(self.column, keyed_lines)
        self.earlier_line = {
            line: first for (_, line), first in zip(keyed_lines, firsts, strict=True) if first is not None
        }

    def check(self, record: Record) -> RowError | None:
        first = self.earlier_line.get(record.line)
        if first is None:
            return None
        return cell_error(record, self.column, self.code, f"{self.column} is the same as line {first}")


def outcome(record: Record, errors: list[RowError], payload: Any = None) -> RowOutcome:
    """The outcome of a record: its errors, or its payload when there are none."""
    if errors:
        return RowOutcome(record.line, errors=errors)
    return RowOutcome(record.line, payload=payload)


class Notifying(Protocol):
    """A payload that may notify caregivers (an admission, a transfer, a discharge)."""

    @property
    def event(self) -> CareEvent | None: ...


def notify_caregivers(
    store: CaregiverNotifier, payloads: Sequence[Notifying], context: RunContext
) -> list[NotificationLine]:
    """The notifications of applied admissions, transfers or discharges whose ``event`` asks for one."""
    events = [payload.event for payload in payloads if payload.event is not None]
    return store.notify(events, context.operation_id, context.now, context.email) if events else []

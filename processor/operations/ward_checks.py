"""Checks the operations share: row model validation, "same as line N", lookups by identifier."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from processor.core.csv_reading import Record
from processor.core.fields import present_cells, row_errors
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

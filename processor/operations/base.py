"""The interface every operation type implements, so that the pipeline is written once.

An operation validates records chunk by chunk (phase 1: read-only lookups, row errors as values), then
applies the valid rows' payloads chunk by chunk inside the file's single transaction (phase 2). Payloads
must be picklable: between the phases they wait in a spool file, so memory stays bounded by a chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from processor.core.csv_reading import ColumnSpec, Record
from processor.core.operation_types import OperationType
from processor.core.problems import RowError
from processor.operations.ports import FirstLineIndex, Lookups, NotificationLine, Stores


class MemoryFirstLineIndex:
    """A ``FirstLineIndex`` in a dictionary: for small files and for code that runs without a pipeline."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], int] = {}

    def claim(self, kind: str, keyed_lines: list[tuple[str, int]]) -> list[int | None]:
        earlier = []
        for key, line in keyed_lines:
            first = self._first.setdefault((kind, key), line)
            earlier.append(None if first == line else first)
        return earlier


@dataclass(frozen=True)
class RunContext:
    """What an operation may know about the file it is processing."""

    operation_id: int
    now: datetime
    notify: bool = False
    first_lines: FirstLineIndex = field(default_factory=MemoryFirstLineIndex)


@dataclass
class RowOutcome:
    """One record's fate after validation: errors, or a payload to apply and the keys it will create."""

    line: int
    errors: list[RowError] = field(default_factory=list)
    payload: Any = None
    created: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class OperationRun(Protocol):
    """One file's validation and application state (e.g. which e-mails earlier lines used).

    The pipeline passes every named store; the run takes the one its operation needs (see
    ``ports``). Payloads are typed by each operation; here they are whatever the spool gave back.
    """

    def validate(self, records: list[Record], lookups: Lookups) -> list[RowOutcome]:
        """Validate a chunk; one outcome per record, in order. Only lookups: nothing is written."""
        ...

    def apply(self, payloads: list[Any], stores: Stores) -> list[NotificationLine]:
        """Write a chunk of valid payloads through the stores, inside the file's transaction.

        Returns the caregiver notifications the chunk produced (none for most operations).
        """
        ...


class Operation(Protocol):
    """An operation type: its columns, the keys it adds to result.csv, and a run per file."""

    operation_type: OperationType
    spec: ColumnSpec
    created_columns: tuple[str, ...]

    def start(self, context: RunContext) -> OperationRun:
        """Fresh state for one file."""
        ...

"""The rules' side of the interface every operation type implements, so that the pipeline is written once.

An operation validates records chunk by chunk (phase 1: read-only lookups, row errors as values), then
applies the valid rows' payloads chunk by chunk inside the file's single transaction (phase 2). Payloads
must be picklable: between the phases they wait in a spool file, so memory stays bounded by a chunk.

Nothing here touches a database or a file: each room's ``rules`` module builds on this alone, and
``registry.Operation`` adds how a room's store is built on a connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from functools import cached_property
from typing import Any, ClassVar, Protocol, TypeVar

from processor.core.csv_reading import ColumnSpec, Record
from processor.core.operation_kinds import OperationKind, OperationType
from processor.core.problems import RowError
from processor.core.report_request import ReportRequest
from processor.operations.ports import FirstLineIndex, NotificationLine

LookupsT_contra = TypeVar("LookupsT_contra", contravariant=True)
StoreT_contra = TypeVar("StoreT_contra", contravariant=True)


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
    upsert: bool = False  # import_patients: a known patient_id updates the patient (mode = "upsert")
    clear_marker: str | None = None  # in upsert mode, a cell holding exactly this clears the value
    email: bool = False  # caregivers with an e-mail address are e-mailed by wardbulk ([notifications])
    zone: tzinfo = UTC  # the wards' time zone: a date-time without an offset is theirs, and "today"

    @cached_property
    def validation(self) -> dict[str, Any]:
        """The row models' validation context (``core.fields``): made once per file, not per row."""
        return {"now": self.now, "zone": self.zone, "today": self.now.astimezone(self.zone).date()}


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


class OperationRun(Protocol[LookupsT_contra, StoreT_contra]):
    """One file's validation and application state (e.g. which e-mails earlier lines used).

    ``LookupsT_contra`` is what the operation's validation looks up (its room's lookups port, read-only) and
    ``StoreT_contra`` what its apply writes through (its room's store port, on the file's transaction).
    Payloads are typed by each operation; here they are whatever the spool gave back.
    """

    def validate(self, records: list[Record], lookups: LookupsT_contra) -> list[RowOutcome]:
        """Validate a chunk; one outcome per record, in order. Only lookups: nothing is written."""
        ...

    def apply(self, payloads: list[Any], store: StoreT_contra) -> list[NotificationLine]:
        """Write a chunk of valid payloads through the store, inside the file's transaction.

        Returns the caregiver notifications the chunk produced (none for most operations).
        """
        ...


class Rules(Protocol):
    """An operation type's rules: its columns, the keys it adds to result.csv, and a run per file."""

    @property
    def operation_type(self) -> OperationType: ...

    @property
    def spec(self) -> ColumnSpec: ...

    @property
    def created_columns(self) -> tuple[str, ...]: ...

    @property
    def own_codes(self) -> tuple[StrEnum, ...]: ...

    def start(self, context: RunContext) -> OperationRun[Any, Any]:
        """Fresh state for one file."""
        ...


class Trigger(Protocol):
    """An operation type whose files are triggers: any file asks for ``request``; its content is
    neither parsed nor de-duplicated."""

    operation_type: OperationType
    request: ReportRequest


class Described:
    """An operation type's name and columns, read off its descriptor (``kind``)."""

    kind: ClassVar[OperationKind]
    created_columns: ClassVar[tuple[str, ...]] = ()  # the keys it adds to result.csv
    own_codes: ClassVar[tuple[StrEnum, ...]] = ()  # row codes only this operation writes (its room's)

    @property
    def operation_type(self) -> OperationType:
        return self.kind.operation_type

    @property
    def spec(self) -> ColumnSpec:
        return self.kind.format.spec

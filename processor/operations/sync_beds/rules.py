"""sync_beds: upsert the ward and bed registry and beds' maintenance status.

Wards are matched by code and beds by bed_id; new ones are created, existing ones updated (number, ward,
status). An occupied bed cannot be put into maintenance, made available, or moved to another ward
(bed-occupied). A bed missing from the file is left alone: nothing is deleted by omission.

Store: ``BedRegistryStore`` (``ports``): the ward and bed registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict

from processor.core.csv_reading import Record
from processor.core.fields import OptionalText, RequiredCode, one_of
from processor.core.operation_kinds import OperationType, format_of
from processor.core.operation_types import BedStatus
from processor.core.problems import Code, RowError
from processor.operations.base import RowOutcome, RunContext
from processor.operations.ports import BedState, NotificationLine
from processor.operations.sync_beds.ports import BedRegistryLookups, BedRegistryStore, BedUpsert
from processor.operations.ward_checks import (
    CODE_MAX,
    NO_LIMIT,
    FirstLines,
    RowForm,
    cell_error,
    optional_choice,
    optional_text,
    outcome,
    parse_rows,
    required_text,
)

FORMAT = format_of(OperationType.SYNC_BEDS)
SETTABLE_STATUSES = (BedStatus.AVAILABLE.value, BedStatus.MAINTENANCE.value)


class BedRow(BaseModel):
    """One registry row after validation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ward: RequiredCode
    bed_id: RequiredCode
    bed_number: OptionalText = None
    ward_name: OptionalText = None
    status: Annotated[OptionalText, one_of(SETTABLE_STATUSES)] = None


class BedCells(NamedTuple):
    """A registry row the fast path accepted: ``BedRow``'s fields and values."""

    ward: str
    bed_id: str
    bed_number: str | None
    ward_name: str | None
    status: str | None


FORM = RowForm(
    BedRow,
    BedCells,
    (
        required_text(CODE_MAX),
        required_text(CODE_MAX),
        optional_text(NO_LIMIT),
        optional_text(NO_LIMIT),
        optional_choice(SETTABLE_STATUSES),
    ),
)
Row = BedRow | BedCells


def occupied_bed_problem(record: Record, row: Row, bed: BedState | None) -> RowError | None:
    """bed-occupied when the row would change the status or the ward of an occupied bed."""
    if bed is None or bed.status != BedStatus.OCCUPIED:
        return None
    if row.status is not None or row.ward != bed.ward_code:
        return cell_error(
            record,
            "bed_id",
            Code.BED_OCCUPIED,
            "the bed is occupied: discharge the patient before changing its status or ward",
        )
    return None


BED_NUMBER_MAX = 32


def length_problems(record: Record, row: Row, bed: BedState | None) -> list[RowError]:
    """Values the registry cannot hold; a new bed without a number takes its bed_id, if that fits."""
    if bed is None and row.bed_number is None and len(row.bed_id) > BED_NUMBER_MAX:
        return [
            cell_error(
                record,
                "bed_number",
                Code.CONSTRAINT_ERROR,
                f"bed_number is required for a new bed whose bed_id is over {BED_NUMBER_MAX} characters",
            )
        ]
    limits = (("bed_number", row.bed_number, BED_NUMBER_MAX), ("ward_name", row.ward_name, 200))
    return [
        cell_error(record, column, Code.CONSTRAINT_ERROR, f"{column} is longer than {limit} characters")
        for column, value, limit in limits
        if value is not None and len(value) > limit
    ]


@dataclass
class SyncBedsRun:
    """One file's state: first line per bed, and the ward names given so far."""

    context: RunContext
    beds_seen: FirstLines = field(init=False)
    ward_names: dict[str, tuple[str, int]] = field(default_factory=dict)  # one per ward: small

    def __post_init__(self) -> None:
        self.beds_seen = FirstLines("bed_id", Code.CONSTRAINT_ERROR, self.context.first_lines)

    def validate(self, records: list[Record], lookups: BedRegistryLookups) -> list[RowOutcome]:
        parsed = parse_rows(FORM, records, self.context)
        rows = [(record, row) for record, row in parsed if not isinstance(row, list)]
        self.beds_seen.claim([(row.bed_id, record.line) for record, row in rows])
        beds = lookups.beds_by_code(row.bed_id for _, row in rows)
        return [self._outcome(record, row, beds) for record, row in parsed]

    def _outcome(self, record: Record, row: Row | list[RowError], beds: dict[str, BedState]) -> RowOutcome:
        if isinstance(row, list):
            return RowOutcome(record.line, errors=row)
        bed = beds.get(row.bed_id)
        checks = (
            self.beds_seen.check(record),
            self._ward_name_conflict(record, row),
            occupied_bed_problem(record, row, bed),
        )
        errors = [error for error in checks if error is not None] + length_problems(record, row, bed)
        upsert = BedUpsert(
            row.bed_id, row.ward, row.ward_name, row.bed_number, row.status, bed.id if bed else None
        )
        return outcome(record, errors, upsert)

    def _ward_name_conflict(self, record: Record, row: Row) -> RowError | None:
        if row.ward_name is None:
            return None
        name, line = self.ward_names.setdefault(row.ward, (row.ward_name, record.line))
        if name == row.ward_name:
            return None
        return cell_error(
            record,
            "ward_name",
            Code.CONSTRAINT_ERROR,
            f"ward_name differs from the name given for this ward on line {line}",
        )

    def apply(self, payloads: list[BedUpsert], store: BedRegistryStore) -> list[NotificationLine]:
        store.upsert_beds(payloads, self.context.now)
        return []

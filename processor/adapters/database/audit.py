"""The audit trail of changed values (issue 14): ``audit_changes``, one row per stored value a file
changed, with the operation and line that changed it, the old and the new value.

Written in bulk in the file's transaction (it commits or rolls back with the change); read by
``wardbulk audit patient``. Values are kept as text (dates in ISO 8601; NULL for no value): they are
patient data, so they are stored here and shown to an operator who asks, never logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from processor.adapters.database.base import Base, UtcDateTime
from processor.adapters.database.bulk import insert_rows
from processor.adapters.database.models import BulkOperation, Patient


class AuditChange(Base):
    """One stored value changed by a file: ``table_name``'s ``column_name`` of the row ``row_id``, which
    belongs to the record known by ``record_key`` (a patient's patient_id), went from ``old_value`` to
    ``new_value``."""

    __tablename__ = "audit_changes"
    __table_args__ = (
        # wardbulk audit patient: one record's changes in order, one index range.
        Index("ix_audit_changes_record_key_id", "record_key", "id"),
        Index("ix_audit_changes_bulk_operation_id", "bulk_operation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bulk_operation_id: Mapped[int] = mapped_column(ForeignKey("bulk_operations.id"))
    line: Mapped[int] = mapped_column(Integer)
    table_name: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(String(64))
    row_id: Mapped[int] = mapped_column(Integer)
    column_name: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True)
class Change:
    """A change to record: where (table, key, column), what (old → new), and which file line did it."""

    line: int
    table: str
    key: str
    row_id: int  # the changed row's id in ``table`` (which of a patient's caregivers, say)
    column: str
    old: str | date | None
    new: str | date | None


def as_text(value: str | date | None) -> str | None:
    """How a value is kept in the trail: text, dates in ISO 8601, None as NULL."""
    return value.isoformat() if isinstance(value, date) else value


def record_changes(
    connection: Connection, changes: Iterable[Change], operation_id: int, now: datetime
) -> None:
    """Write ``changes`` to the trail, in bulk, on the caller's transaction."""
    insert_rows(
        connection,
        AuditChange,
        ("line", "table_name", "record_key", "row_id", "column_name", "old_value", "new_value"),
        ((c.line, c.table, c.key, c.row_id, c.column, as_text(c.old), as_text(c.new)) for c in changes),
        shared={"bulk_operation_id": operation_id, "changed_at": now},
    )


@dataclass(frozen=True)
class TrailEntry:
    """One line of a record's history, as ``wardbulk audit`` shows it."""

    at: datetime
    operation_id: int | None
    file_name: str | None
    line: int | None
    table: str
    row_id: int
    column: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class PatientTrail:
    """A patient's history: when and by which file it was created, then every change, oldest first."""

    mrn: str
    created_at: datetime | None  # None: no such patient now (its changes may still be listed)
    created_by: int | None
    created_from: str | None
    changes: list[TrailEntry]


def patient_trail(connection: Connection, mrn: str, limit: int) -> PatientTrail:
    """The history of the patient whose patient_id is exactly ``mrn``: at most the ``limit`` latest
    changes (shown oldest first)."""
    created = connection.execute(
        select(Patient.created_at, Patient.bulk_operation_id, BulkOperation.input_file)
        .outerjoin(BulkOperation, BulkOperation.id == Patient.bulk_operation_id)
        .where(Patient.mrn == mrn)
    ).first()
    query = (
        select(
            AuditChange.changed_at,
            AuditChange.bulk_operation_id,
            BulkOperation.input_file,
            AuditChange.line,
            AuditChange.table_name,
            AuditChange.row_id,
            AuditChange.column_name,
            AuditChange.old_value,
            AuditChange.new_value,
        )
        .outerjoin(BulkOperation, BulkOperation.id == AuditChange.bulk_operation_id)
        .where(AuditChange.record_key == mrn)
        .order_by(AuditChange.id.desc())
        .limit(limit)
    )
    changes = [TrailEntry(*row) for row in connection.execute(query)]
    changes.reverse()
    if created is None:
        return PatientTrail(mrn, None, None, None, changes)
    return PatientTrail(mrn, created.created_at, created.bulk_operation_id, created.input_file, changes)

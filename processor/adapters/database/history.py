"""Operation history for admins: filtered lists, one operation in full, and statistics.

The seed's history page as queries: newest first, filters by type, status and creation date range.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from processor.adapters.database.models import BulkOperation, User
from processor.core.operation_types import OperationStatus

IN_PROGRESS = (OperationStatus.PENDING.value, OperationStatus.PROCESSING.value)


@dataclass(frozen=True)
class HistoryFilter:
    """The seed's filter form: operation type, status, and a creation date range (both days included)."""

    operation_type: str | None = None
    status: str | None = None
    since: date | None = None
    until: date | None = None
    limit: int = 100


def _as_dict(operation: BulkOperation, initiated_by: str | None) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": operation.id,
        "operation_type": operation.operation_type,
        "status": operation.status,
        "input_file": operation.input_file,
        "sha256": operation.sha256,
        "initiated_by": initiated_by,
        "host": operation.host,
        "created_at": iso(operation.created_at),
        "started_at": iso(operation.started_at),
        "completed_at": iso(operation.completed_at),
        "duration_s": operation.duration,
        "total_records": operation.total_records,
        "processed_records": operation.processed_records,
        "successful_records": operation.successful_records,
        "failed_records": operation.failed_records,
        "success_rate": operation.success_rate,
        "error_code": operation.error_code,
        "error_message": operation.error_message,
        "output_file": operation.output_file,
    }


def _query(wanted: HistoryFilter) -> Any:
    query = (
        select(BulkOperation, User.username)
        .outerjoin(User, User.id == BulkOperation.initiated_by_id)
        .order_by(BulkOperation.created_at.desc(), BulkOperation.id.desc())
    )
    if wanted.operation_type:
        query = query.where(BulkOperation.operation_type == wanted.operation_type)
    if wanted.status:
        query = query.where(BulkOperation.status == wanted.status)
    if wanted.since:
        query = query.where(BulkOperation.created_at >= datetime.combine(wanted.since, time.min, tzinfo=UTC))
    if wanted.until:
        end = datetime.combine(wanted.until + timedelta(days=1), time.min, tzinfo=UTC)
        query = query.where(BulkOperation.created_at < end)
    return query


def list_operations(engine: Engine, wanted: HistoryFilter) -> list[dict[str, Any]]:
    """Operations matching ``wanted``, newest first, at most ``wanted.limit``."""
    with Session(engine) as session:
        rows = session.execute(_query(wanted).limit(wanted.limit)).all()
    return [_as_dict(operation, username) for operation, username in rows]


def operation_detail(engine: Engine, operation_id: int) -> dict[str, Any] | None:
    """Everything about one operation, or None if there is none with that id."""
    with Session(engine) as session:
        row = session.execute(_query(HistoryFilter()).where(BulkOperation.id == operation_id)).first()
    if row is None:
        return None
    detail = _as_dict(row[0], row[1])
    detail["first_errors"] = (row[0].error_message or "").splitlines()
    detail["progress_pct"] = (
        round(100 * row[0].processed_records / row[0].total_records, 1) if row[0].total_records else None
    )
    return detail


def _durations(operations: list[BulkOperation]) -> dict[str, float | None]:
    values = sorted(op.duration for op in operations if op.duration is not None)
    if not values:
        return {"median_s": None, "p95_s": None}
    p95 = values[math.ceil(0.95 * len(values)) - 1]  # nearest rank
    return {"median_s": round(statistics.median(values), 3), "p95_s": round(p95, 3)}


def _totals(operations: list[BulkOperation]) -> dict[str, Any]:
    total = sum(op.total_records for op in operations)
    successful = sum(op.successful_records for op in operations)
    return {
        "operations": len(operations),
        "completed": sum(op.status == OperationStatus.COMPLETED for op in operations),
        "in_progress": sum(op.status in IN_PROGRESS for op in operations),
        "failed": sum(op.status == OperationStatus.FAILED for op in operations),
        "records": total,
        "successful_records": successful,
        "success_rate": round(100 * successful / total, 2) if total else 0.0,
        **_durations(operations),
    }


def operation_stats(engine: Engine, wanted: HistoryFilter | None = None) -> dict[str, Any]:
    """Totals (all, completed, in progress, failed), record success rate, durations (median, p95),
    overall and per operation type."""
    query = _query(wanted or HistoryFilter())
    with Session(engine) as session:
        operations = [row[0] for row in session.execute(query)]
    by_type: dict[str, list[BulkOperation]] = {}
    for operation in operations:
        by_type.setdefault(operation.operation_type, []).append(operation)
    return {
        "all": _totals(operations),
        "by_type": {name: _totals(ops) for name, ops in sorted(by_type.items())},
    }

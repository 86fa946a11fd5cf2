"""Producing a report on request (CLI) or on schedule: a BulkOperation with its record count and file."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from processor.adapters.database import operation_records as records
from processor.adapters.database.models import Ward
from processor.core.clock import Clock
from processor.core.operation_types import OperationType
from processor.core.problems import Code
from processor.core.report_request import ReportRequest, ReportType, report_file_name
from processor.reports.files import publish_report, write_table, write_to_stream
from processor.reports.queries import ReportTable, build_report

TO_STDOUT = "-"


@dataclass(frozen=True)
class ReportOutcome:
    """The operation that produced a report, where it went and how many rows it has."""

    operation_id: int
    output: str
    rows: int


def request_problem(engine: Engine, request: ReportRequest) -> str | None:
    """Why a request cannot be run (unknown ward, end before start), or None."""
    if request.start and request.end and request.end < request.start:
        return "the end date is before the start date"
    if request.ward:
        with engine.connect() as connection:
            found = connection.execute(select(Ward.id).where(Ward.code == request.ward)).first()
        if found is None:
            return f"unknown ward {request.ward!r}"
    return None


def run_report(
    engine: Engine,
    outbox_dir: Path,
    clock: Clock,
    request: ReportRequest,
    requested_by: str,
    owner: str,
    label: str,
    destination: str | None = None,
) -> ReportOutcome:
    """Build and write one report as a BulkOperation.

    ``destination`` None writes ``outbox/reports/<type>-<time>-op<N>.csv`` and its latest copy; ``-``
    writes to stdout; anything else is a file path, written atomically.
    """
    operation_type = (
        OperationType.EXPORT_PATIENTS
        if request.report_type == ReportType.EXPORT_PATIENTS
        else OperationType.EXPORT_REPORT
    )
    now = clock()
    new = records.NewOperation(operation_type, label, None, requested_by, owner)
    operation_id = records.register(engine, new, now)
    records.mark_processing(engine, operation_id, owner, now)
    try:
        with engine.connect() as connection:
            table = build_report(connection, request, now)
        output = _write(
            outbox_dir, request, table, destination, report_file_name(request, now, f"op{operation_id}")
        )
    except Exception:
        records.fail(
            engine,
            operation_id,
            owner,
            records.Counts(0, 0, 0),
            Code.INTERNAL_ERROR.value,
            ["the report could not be written"],
            "",
            clock(),
        )
        raise
    rows = len(table.rows)
    with engine.begin() as connection:
        records.complete(connection, operation_id, owner, records.Counts(rows, rows, 0), [], output, clock())
    return ReportOutcome(operation_id, output, rows)


def _write(
    outbox_dir: Path, request: ReportRequest, table: ReportTable, destination: str | None, name: str
) -> str:
    if destination == TO_STDOUT:
        write_to_stream(sys.stdout, table)
        return TO_STDOUT
    if destination:
        write_table(Path(destination), table)
        return destination
    return str(publish_report(outbox_dir, request, table, name))

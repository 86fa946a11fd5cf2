"""Producing a report on request (CLI) or on schedule: a BulkOperation with its record count and file."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path

from sqlalchemy import Engine, select

from processor.adapters.database import operation_records as records
from processor.adapters.database.lifecycle import Lifecycle
from processor.adapters.database.models import Ward
from processor.core.clock import Clock
from processor.core.operation_kinds import OperationType
from processor.core.problems import Code
from processor.core.report_request import ReportRequest, ReportType, report_file_name
from processor.reports.files import ReaderGone, publish_report, write_table, write_to_stream
from processor.reports.queries import Report, stream_report

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
    zone: tzinfo = UTC,
) -> ReportOutcome:
    """Build and write one report as a BulkOperation.

    ``destination`` None writes ``outbox/reports/<type>-<time>-op<N>.csv`` and its latest copy; ``-``
    writes to stdout; anything else is a file path, written atomically. The rows go from the database to
    the file as they are read, never all in memory; on stdout they go out as they come, so a failure
    midway leaves the rows written so far there (and the operation failed). A reader that closes stdout
    early (``| head``) made its choice: the operation completes with the rows written by then, and
    ``ReaderGone`` tells the caller so. The report's days and times are those of ``zone`` (the wards'
    zone); its file name and the operation's times stay UTC.
    """
    operation_type = (
        OperationType.EXPORT_PATIENTS
        if request.report_type == ReportType.EXPORT_PATIENTS
        else OperationType.EXPORT_REPORT
    )
    now = clock()
    new = records.NewOperation(operation_type, label, None, requested_by, owner)
    lifecycle = Lifecycle.register(engine, clock, new, now)
    lifecycle.mark_processing()
    operation_id = lifecycle.operation_id
    name = report_file_name(request, now, f"op{operation_id}")
    try:
        # The rows stream from the query to the file, so the connection stays open while they are written.
        with engine.connect() as connection:
            output, rows = _write(
                outbox_dir, request, stream_report(connection, request, now, zone), destination, name
            )
    except ReaderGone as gone:
        counts = records.Counts(gone.rows_written, gone.rows_written, 0)
        with engine.begin() as connection:
            lifecycle.complete(connection, counts, [str(gone)], TO_STDOUT)
        raise
    except Exception:
        lifecycle.fail(records.Counts(0, 0, 0), Code.INTERNAL_ERROR, ["the report could not be written"])
        raise
    with engine.begin() as connection:
        lifecycle.complete(connection, records.Counts(rows, rows, 0), [], output)
    return ReportOutcome(operation_id, output, rows)


def _write(
    outbox_dir: Path, request: ReportRequest, report: Report, destination: str | None, name: str
) -> tuple[str, int]:
    """Write the report where ``destination`` says; returns where it went and its number of rows."""
    if destination == TO_STDOUT:
        return TO_STDOUT, write_to_stream(sys.stdout, report)
    if destination:
        return destination, write_table(Path(destination), report)
    published = publish_report(outbox_dir, request, report, name)
    return str(published.path), published.rows

"""The ``reports`` store: how export operations write reports inside their file's transaction.

``ReportOutput`` is the small configuration a unit of work is built with
(``UnitOfWork(engine, reports=ReportOutput(outbox_dir, clock, owner_token, zone))``); it builds a
``SqlReportWriter`` on the unit of work's connection. It lives here, not beside the unit of work, because
the report queries and files belong to ``processor.reports``, a layer above the database adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from processor.core.clock import Clock

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from processor.core.report_request import ReportRequest


@dataclass(frozen=True)
class ReportOutput:
    """Where a file's reports go (``outbox_dir``), their clock, the owner token their partials carry
    (so that only this owner's partials are published or discarded), and the wards' zone, whose days
    a request's dates are and whose times the reports show."""

    outbox_dir: Path
    clock: Clock
    owner_token: str
    zone: tzinfo = UTC

    def writer_on(self, connection: Connection) -> SqlReportWriter:
        """The ``reports`` store on ``connection`` (a ``ReportWriting`` for the unit of work)."""
        return SqlReportWriter(connection, self)


class SqlReportWriter:
    """The ``ReportWriter`` port: reports read on the file's connection, written as partials."""

    def __init__(self, connection: Connection, output: ReportOutput) -> None:
        self.connection = connection
        self._output = output

    def write_report(self, request: ReportRequest, file_name: str) -> int:
        """Stream the report from this connection into its file, unpublished until the file's transaction
        commits (the pipeline publishes it then); returns its row count. Rows are never all in memory."""
        # Imported here: every pipeline builds a ReportOutput, and only export files write reports.
        from processor.reports.files import write_partial_report  # noqa: PLC0415
        from processor.reports.queries import stream_report  # noqa: PLC0415

        output = self._output
        report = stream_report(self.connection, request, output.clock(), output.zone)
        return write_partial_report(output.outbox_dir, report, file_name, output.owner_token).rows

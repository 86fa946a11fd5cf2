"""The database store with reports: what the export operations write reports through."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection

from processor.adapters.database.stores import SqlWardStore
from processor.core.clock import Clock
from processor.core.report_request import ReportRequest
from processor.reports.files import write_partial_report
from processor.reports.queries import stream_report


class ReportingStore(SqlWardStore):
    """``SqlWardStore`` plus ``write_report`` (the ``ReportWriter`` port of the export operations)."""

    def __init__(self, connection: Connection, outbox_dir: Path, clock: Clock, owner_token: str) -> None:
        super().__init__(connection)
        self._outbox_dir = outbox_dir
        self._clock = clock
        self._owner_token = owner_token

    def write_report(self, request: ReportRequest, file_name: str) -> int:
        """Stream the report from this connection into its file, unpublished until the file's transaction
        commits (the pipeline publishes it then); returns its row count. Rows are never all in memory."""
        report = stream_report(self.connection, request, self._clock())
        return write_partial_report(self._outbox_dir, report, file_name, self._owner_token).rows


def reporting_store_factory(
    outbox_dir: Path, clock: Clock, owner_token: str
) -> Callable[[Connection], ReportingStore]:
    """What bootstrap gives the pipeline, so the export operations can write reports."""
    return lambda connection: ReportingStore(connection, outbox_dir, clock, owner_token)


__all__ = ["ReportingStore", "reporting_store_factory"]

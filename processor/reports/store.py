"""The database store with reports: what the export operations write reports through."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection

from processor.adapters.database.stores import SqlWardStore
from processor.core.clock import Clock
from processor.core.report_request import ReportRequest
from processor.reports.files import write_partial_report
from processor.reports.queries import build_report


class ReportingStore(SqlWardStore):
    """``SqlWardStore`` plus ``write_report`` (the ``ReportWriter`` port of the export operations)."""

    def __init__(self, connection: Connection, outbox_dir: Path, clock: Clock, owner_token: str) -> None:
        super().__init__(connection)
        self._outbox_dir = outbox_dir
        self._clock = clock
        self._owner_token = owner_token

    def write_report(self, request: ReportRequest, file_name: str) -> int:
        """Build the report on this connection and write it, unpublished until the file's transaction
        commits (the pipeline publishes it then); returns its row count."""
        table = build_report(self.connection, request, self._clock())
        write_partial_report(self._outbox_dir, table, file_name, self._owner_token)
        return len(table.rows)


def reporting_store_factory(
    outbox_dir: Path, clock: Clock, owner_token: str
) -> Callable[[Connection], ReportingStore]:
    """What bootstrap gives the pipeline, so the export operations can write reports."""
    return lambda connection: ReportingStore(connection, outbox_dir, clock, owner_token)


__all__ = ["ReportingStore", "reporting_store_factory"]

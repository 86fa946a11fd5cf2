"""export_report: each row of a request file asks for one report in ``outbox/reports/``.

The room of export_report: its descriptor is ``core.operation_kinds.EXPORT_REPORT``; ``rules`` holds its
row model and checks (pure). It looks wards up with the shared ``ward_sql`` and writes through the unit
of work's ``reports`` store. ``processor.operations.registry`` finds ``OPERATION`` here.
"""

from __future__ import annotations

from sqlalchemy import Connection

from processor.adapters.database.unit_of_work import UnitOfWork
from processor.core.operation_kinds import EXPORT_REPORT
from processor.core.report_request import ReportWriter
from processor.operations.base import Described, RunContext
from processor.operations.export_report.rules import ExportReportRun
from processor.operations.ports import WardsByCode
from processor.operations.ward_sql import SqlWard


class ExportReport(Described):
    """The export_report operation type."""

    kind = EXPORT_REPORT
    created_columns = ("report_file",)

    def start(self, context: RunContext) -> ExportReportRun:
        return ExportReportRun(context)

    def lookups_on(self, connection: Connection) -> WardsByCode:
        return SqlWard(connection)

    def stores_on(self, uow: UnitOfWork) -> ReportWriter:
        return uow.reports


OPERATION = ExportReport()

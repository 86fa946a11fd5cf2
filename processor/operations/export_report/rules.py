"""export_report: each row of a request file asks for one report in ``outbox/reports/``.

Checks: a known report type, ISO dates, end not before start, a known ward. A bad row is an error row in
errors.csv; the others still run. result.csv names each report file (``report_file``). It looks
wards up (``WardsByCode``) and writes through the unit of work's ``reports`` store (``ReportWriter``),
in the file's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict

from processor.core.csv_reading import Record
from processor.core.fields import OptionalDate, OptionalText, Text, one_of
from processor.core.problems import Code, RowError
from processor.core.report_request import ReportRequest, ReportType, ReportWriter, report_file_name
from processor.operations.base import RowOutcome, RunContext
from processor.operations.ports import NotificationLine, WardsByCode
from processor.operations.ward_checks import cell_error, parse_row

REPORT_TYPES = tuple(report_type.value for report_type in ReportType)
ReportToWrite = tuple[ReportRequest, str]  # a payload: the request and its file name in outbox/reports/


class RequestRow(BaseModel):
    """One report request after validation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    report_type: Annotated[Text, one_of(REPORT_TYPES)]
    start_date: OptionalDate = None
    end_date: OptionalDate = None
    ward: OptionalText = None


def _problems(record: Record, row: RequestRow, known_wards: set[str]) -> list[RowError]:
    problems = []
    if not row.report_type:
        problems.append(cell_error(record, "report_type", Code.CONSTRAINT_ERROR, "report_type is required"))
    if row.start_date and row.end_date and row.end_date < row.start_date:
        problems.append(
            cell_error(record, "end_date", Code.CONSTRAINT_ERROR, "end_date is before start_date")
        )
    if row.ward is not None and row.ward not in known_wards:
        problems.append(cell_error(record, "ward", Code.UNKNOWN_WARD, "ward is not a known ward"))
    return problems


@dataclass
class ExportReportRun:
    """One request file."""

    context: RunContext

    def validate(self, records: list[Record], lookups: WardsByCode) -> list[RowOutcome]:
        parsed = [(record, parse_row(RequestRow, record, self.context)) for record in records]
        wards = {row.ward for _, row in parsed if isinstance(row, RequestRow) and row.ward}
        known = set(lookups.wards_by_code(wards))
        return [self._outcome(record, row, known) for record, row in parsed]

    def _outcome(self, record: Record, row: RequestRow | list[RowError], known: set[str]) -> RowOutcome:
        if isinstance(row, list):
            return RowOutcome(record.line, errors=row)
        problems = _problems(record, row, known)
        if problems:
            return RowOutcome(record.line, errors=problems)
        request = ReportRequest(ReportType(row.report_type), row.ward, row.start_date, row.end_date)
        name = report_file_name(request, self.context.now, f"op{self.context.operation_id}-line{record.line}")
        return RowOutcome(record.line, payload=(request, name), created={"report_file": name})

    def apply(self, payloads: list[ReportToWrite], store: ReportWriter) -> list[NotificationLine]:
        for request, name in payloads:
            store.write_report(request, name)
        return []

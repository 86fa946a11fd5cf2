"""The report queries: a few joins and GROUP BYs each, never a query per ward, bed or patient.

Every report is a ``ReportStream``: its header and a generator of rows that runs the queries when it is
first iterated and yields each row as the database returns it, so a report over 100k patients goes to
its file without ever being held in memory. The generator must be consumed while the connection is open
(one read transaction: the queries of a report see one snapshot). ``build_report`` collects a stream
into a ``ReportTable``. Dates are calendar days of the wards' zone (UTC by default); a period
``start..end`` includes both days, from local midnight to local midnight; times are shown in that zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from sqlalchemy import Connection

from processor.core.report_request import ReportRequest, ReportType
from processor.reports.queries.common import Report, ReportStream, ReportTable
from processor.reports.queries.occupancy import occupancy
from processor.reports.queries.stays import admission_discharge, export_patients, patient_list
from processor.reports.queries.utilization import bed_utilization, utilization_period

__all__ = [
    "QUERIES",
    "Report",
    "ReportStream",
    "ReportTable",
    "build_report",
    "stream_report",
    "utilization_period",
]

QUERIES: dict[ReportType, Callable[[Connection, ReportRequest, datetime], ReportStream]] = {
    ReportType.OCCUPANCY: occupancy,
    ReportType.PATIENT_LIST: patient_list,
    ReportType.ADMISSION_DISCHARGE: admission_discharge,
    ReportType.BED_UTILIZATION: bed_utilization,
    ReportType.EXPORT_PATIENTS: export_patients,
}


def stream_report(
    connection: Connection, request: ReportRequest, now: datetime, zone: tzinfo = UTC
) -> ReportStream:
    """The rows of one report, as of ``now``, produced as they are read (on ``connection``, still open);
    its days and times are those of ``zone``, the wards' zone."""
    return QUERIES[request.report_type](connection, request, now.astimezone(zone))


def build_report(
    connection: Connection, request: ReportRequest, now: datetime, zone: tzinfo = UTC
) -> ReportTable:
    """The rows of one report, as of ``now``, all in memory (days and times of ``zone``)."""
    stream = stream_report(connection, request, now, zone)
    return ReportTable(stream.header, list(stream.rows))

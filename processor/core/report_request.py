"""What a report request is, shared by the CLI, request files, schedules and the report builders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class ReportType(StrEnum):
    """The report types (``export_patients`` is the seed's quick patient list)."""

    OCCUPANCY = "occupancy"
    PATIENT_LIST = "patient_list"
    ADMISSION_DISCHARGE = "admission_discharge"
    BED_UTILIZATION = "bed_utilization"
    EXPORT_PATIENTS = "export_patients"


@dataclass(frozen=True)
class ReportRequest:
    """What to report: a type and optional filters (ward code, first and last day, both included).

    The days are calendar days of the wards' zone (``timezone``): a day runs from local midnight to
    local midnight, 23 or 25 hours when the clocks change; the reports turn them into UTC instants.
    """

    report_type: ReportType
    ward: str | None = None
    start: date | None = None
    end: date | None = None


def _base(request: ReportRequest) -> str:
    ward = f"-{_UNSAFE.sub('_', request.ward)}" if request.ward else ""
    return f"{request.report_type.value}{ward}"


def report_file_name(request: ReportRequest, at: datetime, tag: str) -> str:
    """``<type>[-<ward>]-<YYYYmmddTHHMMSSZ>-<tag>.csv``; the tag (e.g. ``op12``) keeps names unique."""
    return f"{_base(request)}-{at.strftime('%Y%m%dT%H%M%SZ')}-{tag}.csv"


class ReportWriter(Protocol):
    """The reports store: builds a report in the file's transaction and writes it."""

    def write_report(self, request: ReportRequest, file_name: str) -> int:
        """Write the report under ``file_name`` in ``outbox/reports/``, unpublished until the file's
        transaction commits; returns its rows."""
        ...

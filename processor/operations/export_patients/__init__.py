"""export_patients: any file dropped in its folder asks for the quick patient list; its content is ignored.

The room of export_patients, a trigger (``core.operation_kinds.EXPORT_PATIENTS``): nothing to parse or
validate, so no rules, ports or SQL; the pipeline writes ``request`` through the unit of work's
``reports`` store. ``processor.operations.registry`` finds ``TRIGGER`` here.
"""

from __future__ import annotations

from processor.core.operation_kinds import EXPORT_PATIENTS, OperationType
from processor.core.report_request import ReportRequest, ReportType


class ExportPatients:
    """The export_patients operation type: a trigger. Any file in its folder asks for one patient export;
    the file's content is ignored (not parsed, not de-duplicated)."""

    operation_type: OperationType = EXPORT_PATIENTS.operation_type
    request = ReportRequest(ReportType.EXPORT_PATIENTS)


TRIGGER = ExportPatients()

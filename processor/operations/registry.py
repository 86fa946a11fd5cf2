"""The operation types the pipeline can apply, by type."""

from __future__ import annotations

from processor.core.operation_types import OperationType
from processor.operations.base import Operation
from processor.operations.bulk_assignment import BulkAssignment
from processor.operations.bulk_discharge import BulkDischarge
from processor.operations.export_report import ExportPatients, ExportReport
from processor.operations.import_patients import ImportPatients
from processor.operations.sync_beds import SyncBeds

OPERATIONS: dict[OperationType, Operation] = {
    OperationType.IMPORT_PATIENTS: ImportPatients(),
    OperationType.BULK_ASSIGNMENT: BulkAssignment(),
    OperationType.BULK_DISCHARGE: BulkDischarge(),
    OperationType.SYNC_BEDS: SyncBeds(),
    OperationType.EXPORT_REPORT: ExportReport(),
}
# Operations whose files are only triggers: their content is neither parsed nor de-duplicated.
TRIGGERS: dict[OperationType, ExportPatients] = {OperationType.EXPORT_PATIENTS: ExportPatients()}


def operation_for(operation_type: OperationType) -> Operation | None:
    """The operation that parses and applies files of ``operation_type`` (None for a trigger)."""
    return OPERATIONS.get(operation_type)


def trigger_for(operation_type: OperationType) -> ExportPatients | None:
    """The trigger operation of ``operation_type``, if its files are triggers."""
    return TRIGGERS.get(operation_type)


def is_available(operation_type: OperationType) -> bool:
    """Whether this version processes files of ``operation_type``."""
    return operation_type in OPERATIONS or operation_type in TRIGGERS

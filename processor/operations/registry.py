"""The operation types the pipeline can apply, by type."""

from __future__ import annotations

from processor.core.operation_types import OperationType
from processor.operations.base import Operation
from processor.operations.bulk_assignment import BulkAssignment
from processor.operations.bulk_discharge import BulkDischarge
from processor.operations.import_patients import ImportPatients
from processor.operations.sync_beds import SyncBeds

OPERATIONS: dict[OperationType, Operation] = {
    OperationType.IMPORT_PATIENTS: ImportPatients(),
    OperationType.BULK_ASSIGNMENT: BulkAssignment(),
    OperationType.BULK_DISCHARGE: BulkDischarge(),
    OperationType.SYNC_BEDS: SyncBeds(),
}


def operation_for(operation_type: OperationType) -> Operation | None:
    """The operation implementing ``operation_type``, or None if this version has none yet."""
    return OPERATIONS.get(operation_type)

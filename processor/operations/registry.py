"""The implementation of every operation type, keyed by its descriptor (``processor.core.operation_kinds``).

Every descriptor has exactly one implementation: an ``Operation`` that parses and applies files, or, for a
descriptor whose files are triggers, a trigger (tests/test_operation_kinds.py checks both ways).
"""

from __future__ import annotations

from processor.core import operation_kinds as kinds
from processor.core.operation_kinds import OperationKind, kind_of
from processor.core.operation_types import OperationType
from processor.operations.base import Operation
from processor.operations.bulk_assignment import BulkAssignment
from processor.operations.bulk_discharge import BulkDischarge
from processor.operations.export_report import ExportPatients, ExportReport
from processor.operations.import_patients import ImportPatients
from processor.operations.sync_beds import SyncBeds
from processor.operations.transfer_patients import TransferPatients

OPERATIONS: dict[OperationKind, Operation] = {
    kinds.SYNC_BEDS: SyncBeds(),
    kinds.IMPORT_PATIENTS: ImportPatients(),
    kinds.BULK_ASSIGNMENT: BulkAssignment(),
    kinds.TRANSFER_PATIENTS: TransferPatients(),
    kinds.BULK_DISCHARGE: BulkDischarge(),
    kinds.EXPORT_REPORT: ExportReport(),
}
# Operations whose files are only triggers: their content is neither parsed nor de-duplicated.
TRIGGERS: dict[OperationKind, ExportPatients] = {kinds.EXPORT_PATIENTS: ExportPatients()}


def operation_for(operation_type: OperationType) -> Operation | None:
    """The operation that parses and applies files of ``operation_type`` (None for a trigger)."""
    return OPERATIONS.get(kind_of(operation_type))


def trigger_for(operation_type: OperationType) -> ExportPatients | None:
    """The trigger operation of ``operation_type``, if its files are triggers."""
    return TRIGGERS.get(kind_of(operation_type))


def is_available(operation_type: OperationType) -> bool:
    """Whether this version processes files of ``operation_type``."""
    kind = kind_of(operation_type)
    return kind in OPERATIONS or kind in TRIGGERS

"""The operation types and statuses every layer shares (inbox folder names, database values)."""

from enum import StrEnum


class OperationType(StrEnum):
    """One inbox folder per operation type; the value is the folder name and the database value.

    The members mirror ``operation_kinds.OPERATION_KINDS`` (each type's descriptor), in its order: a
    hospital's day. They stay literal so that mypy sees ``OperationType.SYNC_BEDS``;
    tests/test_operation_kinds.py fails when the two differ.
    """

    SYNC_BEDS = "sync_beds"
    IMPORT_PATIENTS = "import_patients"
    BULK_ASSIGNMENT = "bulk_assignment"
    TRANSFER_PATIENTS = "transfer_patients"
    BULK_DISCHARGE = "bulk_discharge"
    EXPORT_REPORT = "export_report"
    EXPORT_PATIENTS = "export_patients"


class OperationStatus(StrEnum):
    """A BulkOperation's lifecycle: pending → processing → completed | failed."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class BedStatus(StrEnum):
    """The only states a bed can be in; the database enforces the same set."""

    AVAILABLE = "available"
    OCCUPIED = "occupied"
    MAINTENANCE = "maintenance"

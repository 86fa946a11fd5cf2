"""The operation types and statuses every layer shares (inbox folder names, database values)."""

from enum import StrEnum


class OperationType(StrEnum):
    """One inbox folder per operation type; the value is the folder name and the database value."""

    IMPORT_PATIENTS = "import_patients"
    EXPORT_PATIENTS = "export_patients"
    BULK_DISCHARGE = "bulk_discharge"
    BULK_ASSIGNMENT = "bulk_assignment"
    EXPORT_REPORT = "export_report"
    SYNC_BEDS = "sync_beds"


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

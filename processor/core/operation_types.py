"""The statuses every layer shares (database values). Operation types are in ``operation_kinds``."""

from enum import StrEnum


class OperationStatus(StrEnum):
    """A BulkOperation's lifecycle: pending → processing → completed | failed; a dry run ends
    validated (read and checked, nothing applied) or failed."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    VALIDATED = "validated"


class BedStatus(StrEnum):
    """The only states a bed can be in; the database enforces the same set."""

    AVAILABLE = "available"
    OCCUPIED = "occupied"
    MAINTENANCE = "maintenance"

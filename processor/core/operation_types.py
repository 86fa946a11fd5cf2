"""The statuses every layer shares (database values). Operation types are in ``operation_kinds``."""

from enum import StrEnum


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

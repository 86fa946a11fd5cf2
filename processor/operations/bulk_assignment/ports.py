"""What bulk_assignment validates against and writes: its payload and its store."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol

from processor.operations.ports import BedsByCode, CareEvent, CaregiverNotifier, PatientsByMrn


class NewAdmission(NamedTuple):
    """A validated bulk_assignment row (its payload)."""

    patient_id: int
    bed_id: int
    admitted_at: datetime
    reason: str
    chief_complaint: str | None
    event: CareEvent | None  # None: no notification for this row


class AssignmentLookups(PatientsByMrn, BedsByCode, Protocol):
    """What bulk_assignment looks up while it validates: the patients and the beds a chunk names."""


class AssignmentStore(AssignmentLookups, CaregiverNotifier, Protocol):
    """bulk_assignment's store: its lookups, admissions, and the caregiver notifications they send."""

    def admit(self, admissions: list[NewAdmission], operation_id: int, now: datetime) -> None:
        """Insert the admissions and occupy their beds, only if still available (else ConcurrentChange)."""
        ...

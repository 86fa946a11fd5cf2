"""What bulk_discharge validates against and writes: its payload and its store."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol

from processor.operations.ports import CareEvent, CaregiverNotifier, PatientsByMrn


class NewDischarge(NamedTuple):
    """A validated bulk_discharge row (its payload)."""

    patient_id: int
    admission_id: int
    bed_id: int
    discharged_at: datetime
    discharge_status: str
    discharge_notes: str | None
    event: CareEvent | None


class DischargeLookups(PatientsByMrn, Protocol):
    """What bulk_discharge looks up while it validates: the patients a chunk names, with their stays."""


class DischargeStore(DischargeLookups, CaregiverNotifier, Protocol):
    """bulk_discharge's store: its lookups, the discharges, and the caregiver notifications they send."""

    def discharge(self, discharges: list[NewDischarge], operation_id: int, now: datetime) -> None:
        """Insert the discharges, end the admissions, free the beds (ConcurrentChange if already done)."""
        ...

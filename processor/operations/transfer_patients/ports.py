"""What transfer_patients validates against and writes: its payload and its store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple, Protocol

from processor.operations.ports import BedsByCode, CareEvent, CaregiverNotifier, PatientsByMrn


class NewTransfer(NamedTuple):
    """A validated transfer_patients row (its payload): the stay moves from one bed to the other."""

    patient_id: int
    admission_id: int
    from_bed_id: int
    to_bed_id: int
    transferred_at: datetime
    reason: str
    event: CareEvent | None


class TransferLookups(PatientsByMrn, BedsByCode, Protocol):
    """What transfer_patients looks up while it validates: patients, target beds, and when each stay
    last moved."""

    def last_transfers(self, admission_ids: Iterable[int]) -> dict[int, datetime]:
        """When each of these admissions last moved bed (its latest transfer); admissions that never
        moved are absent (their patient has been in the bed since ``admitted_at``)."""
        ...


class TransferStore(TransferLookups, CaregiverNotifier, Protocol):
    """transfer_patients' store: its lookups, the moves, and the caregiver notifications they send."""

    def transfer(self, transfers: list[NewTransfer], operation_id: int, now: datetime) -> None:
        """Move the stays: free each old bed, occupy each new one (only if still available), point the
        admission at it and record the transfer (ConcurrentChange if any of it changed since)."""
        ...

"""What sync_beds validates against and writes: its payload and its store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from processor.operations.ports import BedsByCode, WardsByCode


@dataclass(frozen=True, slots=True)
class BedUpsert:
    """A validated sync_beds row: the bed's wanted state (None keeps what is there)."""

    code: str
    ward_code: str
    ward_name: str | None
    bed_number: str | None
    status: str | None
    existing_bed_id: int | None


class BedRegistryLookups(BedsByCode, WardsByCode, Protocol):
    """What sync_beds looks up while it validates: the beds and wards a chunk names."""


class BedRegistryStore(BedRegistryLookups, Protocol):
    """sync_beds' store: the ward and bed registry."""

    def upsert_beds(self, beds: list[BedUpsert], now: datetime) -> None:
        """Create missing wards and beds, update existing ones (ConcurrentChange if one became occupied)."""
        ...

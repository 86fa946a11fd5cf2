"""Demo wards and beds: enough to try every operation in the README against a fresh database.

Idempotent: wards and beds are matched by code and only missing ones are added, so running
``wardbulk init --demo`` again never resets a bed that is in use.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from processor.adapters.database.models import Ward, WardBed
from processor.core.clock import Clock
from processor.core.operation_types import BedStatus

# (ward code, ward name, number of beds, beds in maintenance)
DEMO_WARDS: tuple[tuple[str, str, int, tuple[int, ...]], ...] = (
    ("CARD", "Cardiology", 10, (10,)),
    ("SURG", "General Surgery", 12, ()),
    ("PAED", "Paediatrics", 8, (7, 8)),
)


@dataclass(frozen=True)
class DemoSeedResult:
    """How many demo wards and beds this run added (0 and 0 when they were all there)."""

    wards_added: int
    beds_added: int


def demo_bed_code(ward_code: str, number: int) -> str:
    """The demo bed identifier, e.g. ``CARD-01``."""
    return f"{ward_code}-{number:02d}"


def seed_demo_data(connection: Connection, clock: Clock) -> DemoSeedResult:
    """Add the demo wards and beds that are missing, in the caller's transaction."""
    now = clock()
    existing_wards = dict(connection.execute(select(Ward.code, Ward.id)).all())
    new_wards = [
        {"code": code, "name": name, "is_active": True, "created_at": now}
        for code, name, _, _ in DEMO_WARDS
        if code not in existing_wards
    ]
    if new_wards:
        connection.execute(insert(Ward), new_wards)
    ward_ids = dict(connection.execute(select(Ward.code, Ward.id)).all())
    existing_beds = set(connection.execute(select(WardBed.code)).scalars().all())
    new_beds = [
        {
            "code": demo_bed_code(code, number),
            "ward_id": ward_ids[code],
            "bed_number": f"{number:02d}",
            "status": (BedStatus.MAINTENANCE if number in maintenance else BedStatus.AVAILABLE).value,
            "current_patient_id": None,
            "updated_at": now,
        }
        for code, _, bed_count, maintenance in DEMO_WARDS
        for number in range(1, bed_count + 1)
        if demo_bed_code(code, number) not in existing_beds
    ]
    if new_beds:
        connection.execute(insert(WardBed), new_beds)
    return DemoSeedResult(wards_added=len(new_wards), beds_added=len(new_beds))

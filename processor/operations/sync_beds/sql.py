"""The SQL of sync_beds: wards and beds created or updated in bulk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, and_, bindparam, func, insert, or_, update

from processor.adapters.database.bulk import expect_changed
from processor.adapters.database.models import Ward, WardBed
from processor.core.operation_types import BedStatus
from processor.operations.sync_beds.ports import BedUpsert
from processor.operations.ward_sql import SqlWard


class SqlBedRegistry(SqlWard):
    """sync_beds' store (``BedRegistryStore``): the ward and bed registry."""

    def upsert_beds(self, beds: list[BedUpsert], now: datetime) -> None:
        if not beds:
            return
        ward_ids = self._upsert_wards(beds, now)
        new = [
            {
                "code": b.code,
                "ward_id": ward_ids[b.ward_code],
                "bed_number": b.bed_number or b.code,
                "status": b.status or BedStatus.AVAILABLE.value,
                "current_patient_id": None,
                "updated_at": now,
            }
            for b in beds
            if b.existing_bed_id is None
        ]
        if new:
            self.connection.execute(insert(WardBed), new)
        existing = [
            {
                "bed": b.existing_bed_id,
                "ward": ward_ids[b.ward_code],
                "number": b.bed_number,
                "status": b.status,
                "now": now,
            }
            for b in beds
            if b.existing_bed_id is not None
        ]
        if existing:
            expect_changed(self.connection, _bed_update(), len(existing), existing)

    def _upsert_wards(self, beds: list[BedUpsert], now: datetime) -> dict[str, int]:
        names = {b.ward_code: b.ward_name for b in beds}
        for b in beds:  # a name given on any row of the ward wins over a row without one
            names[b.ward_code] = b.ward_name or names[b.ward_code]
        known = self.wards_by_code(names)
        missing = [
            {"code": code, "name": name or code, "is_active": True, "created_at": now}
            for code, name in names.items()
            if code not in known
        ]
        if missing:
            self.connection.execute(insert(Ward), missing)
        renamed = [
            {"ward": known[code].id, "name": name}
            for code, name in names.items()
            if code in known and name and name != known[code].name
        ]
        if renamed:
            self.connection.execute(
                update(Ward).where(Ward.id == bindparam("ward")).values(name=bindparam("name")), renamed
            )
        return {code: ward.id for code, ward in self.wards_by_code(names).items()}


def _bed_update() -> Any:
    """Update an existing bed; an occupied bed only when its ward and status stay as they are."""
    status = bindparam("status", type_=String)
    ward = bindparam("ward", type_=Integer)
    unchanged_occupancy = and_(WardBed.ward_id == ward, status.is_(None))
    return (
        update(WardBed)
        .where(
            WardBed.id == bindparam("bed"),
            or_(WardBed.status != BedStatus.OCCUPIED.value, unchanged_occupancy),
        )
        .values(
            ward_id=ward,
            bed_number=func.coalesce(bindparam("number", type_=String), WardBed.bed_number),
            status=func.coalesce(status, WardBed.status),
            updated_at=bindparam("now"),
        )
    )

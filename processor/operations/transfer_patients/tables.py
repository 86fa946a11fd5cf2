"""The table transfer_patients adds to the ward database (migration 0004 creates it).

It sits on the shared ``Base``, so the models-versus-migrations test and the reports see it;
``processor.operations.registry`` imports every room, and with it every room's tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from processor.adapters.database.base import Base, UtcDateTime


class BedTransfer(Base):
    """One move of a stay from a bed to another (HL7 ADT A02): the admission goes on in ``to_bed_id``
    from ``transferred_at``. The admission's own ``bed_id`` is always its latest bed; these records keep
    the earlier ones, so that a bed's occupied days count the part of each stay it held."""

    __tablename__ = "bed_transfers"
    __table_args__ = (
        # The stay's last move (transfer_patients' date check) and its moves in order (bed_utilization).
        Index("ix_bed_transfers_admission_id_transferred_at", "admission_id", "transferred_at"),
        # bed_utilization reads the moves after a period's start, with the bed each one left, from this
        # index alone.
        Index("ix_bed_transfers_transferred_at_covering", "transferred_at", "admission_id", "from_bed_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("patient_admissions.id"))
    from_bed_id: Mapped[int] = mapped_column(ForeignKey("ward_beds.id"))
    to_bed_id: Mapped[int] = mapped_column(ForeignKey("ward_beds.id"))
    transferred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(200))
    bulk_operation_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_operations.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

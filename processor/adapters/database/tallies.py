"""The history's running totals, kept by the database (migration 0007's triggers on ``bulk_operations``).

Nothing in wardbulk writes these tables: every insert, update or delete of an operation changes them in
the same transaction, whoever makes it. The statistics (``history.py``) read them instead of counting
millions of operations. Their days are UTC days whatever ``timezone`` says: for another zone, whose days
start at another hour, ``history.py`` takes the whole UTC days from here and counts the edges from rows.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from processor.adapters.database.base import Base

# (below, width) in microseconds: a duration below ``below`` falls in a bucket ``width`` wide (the first
# pair that holds); longer ones in buckets LONGEST_WIDTH wide; negative ones all in bucket NEGATIVE.
# Migration 0007 computes the same buckets in SQL (tests/test_history_tallies.py compares them).
BUCKET_LADDER = ((10**6, 10**3), (10**7, 10**4), (10**8, 10**5), (10**9, 10**6), (10**10, 10**7))
LONGEST_WIDTH = 10**8
NEGATIVE = -1


class OperationTally(Base):
    """Operations of one type and status created on one UTC day: how many, their record sums, and how
    many of them are finished (have both a start and a completion time, hence a duration)."""

    __tablename__ = "operation_tallies"

    operation_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_on: Mapped[date] = mapped_column(Date, primary_key=True)
    operations: Mapped[int] = mapped_column(BigInteger)
    total_records: Mapped[int] = mapped_column(BigInteger)
    successful_records: Mapped[int] = mapped_column(BigInteger)
    finished: Mapped[int] = mapped_column(BigInteger)


class OperationDurationTally(Base):
    """Finished operations of one type and status whose duration lies in one bucket (``bucket_us``, the
    bucket's lower bound in microseconds: see ``bucket_bounds``)."""

    __tablename__ = "operation_duration_tallies"

    operation_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    bucket_us: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    operations: Mapped[int] = mapped_column(BigInteger)


def bucket_of(microseconds: int) -> int:
    """The bucket of a duration of ``microseconds``: what the triggers store for it."""
    if microseconds < 0:
        return NEGATIVE
    for below, width in BUCKET_LADDER:
        if microseconds < below:
            return microseconds // width * width
    return microseconds // LONGEST_WIDTH * LONGEST_WIDTH


def bucket_bounds(bucket: int) -> tuple[int | None, int]:
    """The durations of ``bucket`` in microseconds: from the first (None: unbounded below) up to but
    excluding the second."""
    if bucket == NEGATIVE:
        return None, 0
    for below, width in BUCKET_LADDER:
        if bucket < below:
            return bucket, bucket + width
    return bucket, bucket + LONGEST_WIDTH

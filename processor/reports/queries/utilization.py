"""bed_utilization: per bed, the days of the period it was occupied.

The period is local days of the wards' zone. A day counts as one day however long it is: a bed
occupied through the 23-hour day of a spring change or the 25-hour day of an autumn one was occupied
one day, and a bed occupied all period is 100% used.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Select,
    exists,
    or_,
    select,
)

from processor.adapters.database.models import (
    Patient,
    PatientAdmission,
    PatientDischarge,
    User,
    Ward,
    WardBed,
)
from processor.core.clock import day_start
from processor.core.report_request import ReportRequest
from processor.operations.transfer_patients.tables import BedTransfer
from processor.reports.queries.common import (
    ADMISSION_IS_ACTIVE,
    ReportStream,
    fetch,
    full_name,
    in_ward,
    naive_utc,
    percent,
    utc_time,
    zone_of,
)

DEFAULT_UTILIZATION_DAYS = 30
DAY_S = 86_400
Measure = Callable[[datetime, datetime], float]  # (from, to), naive UTC: the seconds of occupation

UTILIZATION_HEADER = [
    "ward",
    "ward_name",
    "bed",
    "bed_number",
    "status",
    "current_patient",
    "patient_name",
    "days_occupied",
    "utilization_pct",
    "period_start",
    "period_end",
]


def utilization_period(request: ReportRequest, now: datetime) -> tuple[date, date]:
    """The days a bed_utilization report covers: the request's, by default the last 30 days (local days
    of ``now``'s zone, today included)."""
    end = request.end or now.date()
    start = request.start or end - timedelta(days=DEFAULT_UTILIZATION_DAYS - 1)
    return start, end


@dataclass(frozen=True)
class _Window:
    """A bed_utilization period: its days, and the instants it covers (``until`` is never after now),
    aware as the queries need them; ``measure`` counts the seconds of an occupation in it."""

    start: date
    end: date
    since: datetime
    until: datetime
    measure: Measure

    @classmethod
    def of(cls, request: ReportRequest, now: datetime) -> _Window:
        start, end = utilization_period(request, now)
        zone = zone_of(now)
        since, beyond = day_start(start, zone), day_start(end + timedelta(days=1), zone)
        return cls(start, end, since, min(beyond, now), _measure(start, end, zone))


def _elapsed(begin: datetime, finish: datetime) -> float:
    return (finish - begin).total_seconds()


def _measure(start: date, end: date, zone: tzinfo) -> Measure:
    """How the seconds of an occupation count: as they are, when every day of the period is 24 hours
    long (always in UTC); otherwise as seconds of local days scaled to 86,400 each (``_LocalDays``).
    Each day is weighed, not the period's total: a 23-hour and a 25-hour day in one period cancel."""
    days = (end - start).days + 1
    starts = [naive_utc(day_start(start + timedelta(days=n), zone)) for n in range(days + 1)]
    if all((later - earlier).total_seconds() == DAY_S for earlier, later in itertools.pairwise(starts)):
        return _elapsed
    return _LocalDays(starts).between


@dataclass(frozen=True)
class _LocalDays:
    """The starts (naive UTC) of a period's local days and of the day after: time in them measured so
    that each local day is 86,400 seconds, whether it lasts 23, 24 or 25 hours."""

    starts: list[datetime]

    def between(self, begin: datetime, finish: datetime) -> float:
        return self._position(finish) - self._position(begin)

    def _position(self, moment: datetime) -> float:
        """Scaled seconds from the period's start to ``moment`` (clamped to the period)."""
        last = len(self.starts) - 2
        index = min(max(bisect_right(self.starts, moment) - 1, 0), last)
        day_begins, day_ends = self.starts[index], self.starts[index + 1]
        into = min(max((moment - day_begins).total_seconds(), 0.0), (day_ends - day_begins).total_seconds())
        return index * DAY_S + into * DAY_S / (day_ends - day_begins).total_seconds()


def bed_utilization(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """Every bed, by its ward and bed codes with their names beside them: status, current patient
    (identifier and name), days occupied in the period and utilization % of it."""
    window = _Window.of(request, now)
    beds = in_ward(
        select(
            WardBed.id,
            Ward.code,
            Ward.name,
            WardBed.code,
            WardBed.bed_number,
            WardBed.status,
            Patient.mrn,
            User.first_name,
            User.last_name,
        )
        .join(Ward, Ward.id == WardBed.ward_id)
        .outerjoin(Patient, Patient.id == WardBed.current_patient_id)
        .outerjoin(User, User.id == Patient.user_id)
        .order_by(Ward.code, WardBed.code),
        request.ward,
    )
    return ReportStream(UTILIZATION_HEADER, _utilization_rows(connection, request, window, beds))


def _utilization_rows(
    connection: Connection, request: ReportRequest, window: _Window, beds: Select[*tuple[Any, ...]]
) -> Iterator[list[Any]]:
    occupied = _occupied_days(connection, request.ward, window)
    period_days = (window.end - window.start).days + 1
    for bed_id, ward, ward_name, bed, bed_number, status, mrn, first, last in fetch(connection, beds):
        days = round(occupied.get(bed_id, 0.0), 2)
        yield [
            ward,
            ward_name,
            bed,
            bed_number,
            status,
            mrn or "",
            full_name(first, last) if mrn else "",
            days,
            percent(days, period_days),
            window.start.isoformat(),
            window.end.isoformat(),
        ]


class _Stay(NamedTuple):
    """A stay that overlaps the window (naive UTC times): its admission, its last bed, when it began,
    and when it ended (None while it goes on)."""

    admission_id: int
    last_bed_id: int
    admitted: datetime
    discharged: datetime | None


def _stay_queries(
    connection: Connection, ward: str | None, window: _Window
) -> tuple[Select[*tuple[Any, ...]], ...]:
    """The stays that overlap the window, as (admission id, last bed id, admitted at, discharged at).

    A stay is open while its admission is active and has no discharge, and ended by its discharge
    otherwise; an inactive admission without a discharge has no end and is no stay. Each part is one
    index range (the active admissions; the discharges after the window's start), not every admission
    ever made before the window's end. Open stays are not filtered on ``admitted_at < until``: one
    admitted later covers no time of the window anyway, and the condition made SQLite range over
    ``admitted_at`` (most of a million admissions) instead of the few active ones. For one ward, a stay
    counts when its last bed is there or when it left a bed there during the window.
    """
    admitted_at = utc_time(connection, PatientAdmission.admitted_at)
    open_stays = select(PatientAdmission.id, PatientAdmission.bed_id, admitted_at).where(
        ADMISSION_IS_ACTIVE, ~exists().where(PatientDischarge.admission_id == PatientAdmission.id)
    )
    ended_stays = (
        select(
            PatientAdmission.id,
            PatientAdmission.bed_id,
            admitted_at,
            utc_time(connection, PatientDischarge.discharged_at),
        )
        .join(PatientAdmission, PatientAdmission.id == PatientDischarge.admission_id)
        .where(PatientDischarge.discharged_at > window.since, PatientAdmission.admitted_at < window.until)
    )
    if not ward:
        return open_stays, ended_stays
    in_ward = select(WardBed.id).join(Ward, Ward.id == WardBed.ward_id).where(Ward.code == ward)
    left_ward = select(BedTransfer.admission_id).where(
        BedTransfer.transferred_at > window.since, BedTransfer.from_bed_id.in_(in_ward)
    )
    held = or_(PatientAdmission.bed_id.in_(in_ward), PatientAdmission.id.in_(left_ward))
    return tuple(query.where(held) for query in (open_stays, ended_stays))


def _stays(connection: Connection, ward: str | None, window: _Window) -> Iterator[_Stay]:
    """Every stay that overlaps the window."""
    open_stays, ended_stays = _stay_queries(connection, ward, window)
    for admission_id, bed_id, admitted_at in fetch(connection, open_stays):
        yield _Stay(admission_id, bed_id, admitted_at, None)
    for row in fetch(connection, ended_stays):
        yield _Stay(*row)


def _moves(connection: Connection, window: _Window) -> dict[int, list[tuple[datetime, int]]]:
    """The transfers after the window's start, by admission, in the order they happened: (moved at, bed
    left). Earlier ones need not be read: the segments they end lie before the window."""
    query = (
        select(
            BedTransfer.admission_id,
            utc_time(connection, BedTransfer.transferred_at),
            BedTransfer.from_bed_id,
        )
        .where(BedTransfer.transferred_at > window.since)
        .order_by(BedTransfer.transferred_at, BedTransfer.id)
    )
    moves: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for admission_id, moved_at, bed_left in fetch(connection, query):
        moves[admission_id].append((moved_at, bed_left))
    return moves


def _segments(
    stay: _Stay, moves: list[tuple[datetime, int]], until: datetime
) -> Iterator[tuple[int, datetime, datetime]]:
    """(bed id, from, to) of each bed the stay held: each move ends a segment in the bed it left, and
    the last segment, in the admission's own bed, runs to the discharge (or ``until``). No segment runs
    past the stay's end, even if a discharge was dated before a move."""
    end = until if stay.discharged is None else min(stay.discharged, until)
    begin = stay.admitted
    for moved_at, bed_left in moves:
        yield bed_left, begin, min(moved_at, end)
        begin = moved_at
    yield stay.last_bed_id, begin, end


def _occupied_days(connection: Connection, ward: str | None, window: _Window) -> dict[int, float]:
    """Days each bed was occupied in the window, by bed id (beds with no stay are absent)."""
    since, until = naive_utc(window.since), naive_utc(window.until)
    moves = _moves(connection, window)
    held_by_bed: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for stay in _stays(connection, ward, window):
        for bed_id, begin, end in _segments(stay, moves.get(stay.admission_id, []), until):
            held_by_bed[bed_id].append((max(begin, since), end))
    measure = window.measure
    return {bed_id: _days_covered(intervals, measure) for bed_id, intervals in held_by_bed.items()}


def _days_covered(intervals: list[tuple[datetime, datetime]], measure: Measure = _elapsed) -> float:
    """Days covered by the union of the intervals: overlapping stays (a backdated admission, say) count
    once, so a bed is never more than 100% used."""
    covered, reach = 0.0, None
    for begin, finish in sorted(intervals):
        start = begin if reach is None else max(begin, reach)
        if finish > start:
            covered += measure(start, finish)
            reach = finish if reach is None else max(reach, finish)
    return covered / DAY_S

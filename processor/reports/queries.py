"""The report queries: a few joins and GROUP BYs each, never a query per ward, bed or patient.

Every report is a ``ReportStream``: its header and a generator of rows that runs the queries when it is
first iterated and yields each row as the database returns it, so a report over 100k patients goes to
its file without ever being held in memory. The generator must be consumed while the connection is open
(one read transaction: the queries of a report see one snapshot). ``build_report`` collects a stream
into a ``ReportTable``. Dates are UTC calendar days; a period ``start..end`` includes both days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Select,
    and_,
    case,
    exists,
    func,
    literal_column,
    select,
    type_coerce,
)

from processor.adapters.database.models import (
    Patient,
    PatientAdmission,
    PatientDischarge,
    User,
    Ward,
    WardBed,
)
from processor.core.report_request import ReportRequest, ReportType

DEFAULT_UTILIZATION_DAYS = 30
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])

# The partial indexes of active admissions are declared ``WHERE is_active``. SQLite uses a partial index
# only when the query repeats that term as written, and SQLAlchemy renders a boolean test on SQLite as
# ``is_active = 1`` or ``is_active IS 1``, which made every report with active admissions scan all of
# them, current and past. The column is NOT NULL and holds 0 or 1, so the bare column means the same.
ADMISSION_IS_ACTIVE: ColumnElement[Any] = literal_column(f"{PatientAdmission.__tablename__}.is_active")


def _utc_time(connection: Connection, column: Any) -> Any:
    """``column`` (a ``UtcDateTime``) read as a naive UTC datetime, which the database makes.

    ``UtcDateTime`` makes each value an aware UTC datetime in Python: a report reads up to a hundred
    thousand, and that conversion, with ``isoformat`` of aware values, was a fifth of its time. SQLite
    keeps naive UTC already; PostgreSQL converts in the query. ``_iso`` writes a naive UTC time exactly
    as ``isoformat`` writes the aware one.
    """
    if connection.dialect.name == "postgresql":
        return func.timezone("UTC", column, type_=DateTime())
    return type_coerce(column, DateTime())


class Report(Protocol):
    """What a report writer needs: a header, then rows (a list, or a stream read once)."""

    @property
    def header(self) -> list[str]: ...

    @property
    def rows(self) -> Iterable[list[Any]]: ...


@dataclass
class ReportTable:
    """A report's header and rows, ready to write as CSV."""

    header: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReportStream:
    """A report's header and its rows, produced while they are read; read them once, connection open."""

    header: list[str]
    rows: Iterator[list[Any]]


OCCUPANCY_HEADER = [
    "ward",
    "ward_name",
    "total_beds",
    "occupied",
    "available",
    "maintenance",
    "occupancy_pct",
]
PATIENT_LIST_HEADER = [
    "patient_id",
    "name",
    "email",
    "phone",
    "bed",
    "ward",
    "admission_date",
    "days_admitted",
    "reason",
]
DISCHARGES_HEADER = [
    "discharge_date",
    "patient_id",
    "name",
    "ward",
    "bed",
    "admission_date",
    "length_of_stay_days",
    "discharge_status",
]
UTILIZATION_HEADER = [
    "ward",
    "bed",
    "status",
    "current_patient",
    "days_occupied",
    "utilization_pct",
    "period_start",
    "period_end",
]
EXPORT_HEADER = ["patient_id", "name", "email", "phone", "bed", "ward", "admission_date", "reason"]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _in_days(column: Any, start: date | None, end: date | None) -> list[Any]:
    conditions = []
    if start is not None:
        conditions.append(column >= _day_start(start))
    if end is not None:
        conditions.append(column < _day_start(end + timedelta(days=1)))
    return conditions


def _in_ward(query: AnySelect, ward: str | None) -> AnySelect:
    return query.where(Ward.code == ward) if ward else query


def _percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _full_name(first: str, last: str) -> str:
    return f"{first} {last}".strip()


def _naive_utc(moment: datetime) -> datetime:
    """An aware time as the naive UTC time ``_utc_time`` columns hold."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _iso(naive_utc: datetime) -> str:
    """The ISO text of a naive UTC time, exactly as ``isoformat`` writes the same time in UTC."""
    return f"{naive_utc.isoformat()}+00:00"


def _fetch(connection: Connection, query: Select[*tuple[Any, ...]]) -> Iterator[Any]:
    """The query's rows, each made as it is read: Python never holds the whole result.

    On PostgreSQL the client library receives the whole result (compactly, as text). A server-side
    cursor would keep it on the server, but it makes the planner favour plans that return the first
    rows fast, and a report reads every row: they ran up to twice as slow.
    """
    return iter(connection.execute(query))


def occupancy(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """Per active ward: total beds, occupied, available, maintenance, occupancy %; then a TOTAL row."""

    def count_of(status: str) -> Any:
        return func.coalesce(func.sum(case((WardBed.status == status, 1), else_=0)), 0)

    query = _in_ward(
        select(
            Ward.code,
            Ward.name,
            func.count(WardBed.id),
            count_of("occupied"),
            count_of("available"),
            count_of("maintenance"),
        )
        .outerjoin(WardBed, WardBed.ward_id == Ward.id)
        .where(Ward.is_active.is_(True))
        .group_by(Ward.id, Ward.code, Ward.name)
        .order_by(Ward.code),
        request.ward,
    )
    return ReportStream(OCCUPANCY_HEADER, _occupancy_rows(connection, query))


def _occupancy_rows(connection: Connection, query: Select[*tuple[Any, ...]]) -> Iterator[list[Any]]:
    totals = [0, 0, 0, 0]
    for code, name, *values in connection.execute(query):
        counts = [int(value) for value in values]
        yield [code, name, *counts, _percent(counts[1], counts[0])]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    yield ["TOTAL", "", *totals, _percent(totals[1], totals[0])]


def _patient_stay(connection: Connection) -> Select[*tuple[Any, ...]]:
    """A patient and their stay: patient_list and export_patients read the same columns."""
    return select(
        Patient.mrn,
        User.first_name,
        User.last_name,
        User.email,
        Patient.phone,
        WardBed.code,
        Ward.code,
        _utc_time(connection, PatientAdmission.admitted_at),
        PatientAdmission.reason,
    )


def _admission_join(query: AnySelect) -> AnySelect:
    return (
        query.join(Patient, Patient.id == PatientAdmission.patient_id)
        .join(User, User.id == Patient.user_id)
        .join(WardBed, WardBed.id == PatientAdmission.bed_id)
        .join(Ward, Ward.id == WardBed.ward_id)
    )


def patient_list(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """Every currently admitted patient, with days admitted; filters: ward, admission day range."""
    query = _in_ward(
        _admission_join(_patient_stay(connection).select_from(PatientAdmission))
        .where(ADMISSION_IS_ACTIVE, *_in_days(PatientAdmission.admitted_at, request.start, request.end))
        .order_by(Ward.code, WardBed.code),
        request.ward,
    )
    return ReportStream(PATIENT_LIST_HEADER, _patient_list_rows(connection, query, now.date()))


def _patient_list_rows(
    connection: Connection, query: Select[*tuple[Any, ...]], today: date
) -> Iterator[list[Any]]:
    for mrn, first, last, email, phone, bed, ward, admitted, reason in _fetch(connection, query):
        yield [
            mrn,
            _full_name(first, last),
            email or "",
            phone or "",
            bed,
            ward,
            _iso(admitted),
            (today - admitted.date()).days,
            reason,
        ]


def admission_discharge(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """Discharges with length of stay (calendar days) and status; filters: ward, discharge day range."""
    query = _in_ward(
        _admission_join(
            select(
                _utc_time(connection, PatientDischarge.discharged_at),
                Patient.mrn,
                User.first_name,
                User.last_name,
                Ward.code,
                WardBed.code,
                _utc_time(connection, PatientAdmission.admitted_at),
                PatientDischarge.discharge_status,
            )
            .select_from(PatientDischarge)
            .join(PatientAdmission, PatientAdmission.id == PatientDischarge.admission_id)
        )
        .where(*_in_days(PatientDischarge.discharged_at, request.start, request.end))
        .order_by(PatientDischarge.discharged_at, Patient.mrn),
        request.ward,
    )
    return ReportStream(DISCHARGES_HEADER, _discharge_rows(connection, query))


def _discharge_rows(connection: Connection, query: Select[*tuple[Any, ...]]) -> Iterator[list[Any]]:
    for discharged, mrn, first, last, ward, bed, admitted, status in _fetch(connection, query):
        yield [
            _iso(discharged),
            mrn,
            _full_name(first, last),
            ward,
            bed,
            _iso(admitted),
            (discharged.date() - admitted.date()).days,
            status,
        ]


def utilization_period(request: ReportRequest, now: datetime) -> tuple[date, date]:
    """The days a bed_utilization report covers: the request's, by default the last 30 days."""
    end = request.end or now.date()
    start = request.start or end - timedelta(days=DEFAULT_UTILIZATION_DAYS - 1)
    return start, end


@dataclass(frozen=True)
class _Window:
    """A bed_utilization period: its days, and the instants it covers (``until`` is never after now),
    aware as the queries need them."""

    start: date
    end: date
    since: datetime
    until: datetime

    @classmethod
    def of(cls, request: ReportRequest, now: datetime) -> _Window:
        start, end = utilization_period(request, now)
        return cls(start, end, _day_start(start), min(_day_start(end + timedelta(days=1)), now))


def bed_utilization(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """Every bed: status, current patient, days occupied in the period and utilization % of it."""
    window = _Window.of(request, now)
    beds = _in_ward(
        select(WardBed.id, Ward.code, WardBed.code, WardBed.status, Patient.mrn)
        .join(Ward, Ward.id == WardBed.ward_id)
        .outerjoin(Patient, Patient.id == WardBed.current_patient_id)
        .order_by(Ward.code, WardBed.code),
        request.ward,
    )
    return ReportStream(UTILIZATION_HEADER, _utilization_rows(connection, request, window, beds))


def _utilization_rows(
    connection: Connection, request: ReportRequest, window: _Window, beds: Select[*tuple[Any, ...]]
) -> Iterator[list[Any]]:
    occupied = _occupied_days(connection, request.ward, window)
    period_days = (window.end - window.start).days + 1
    for bed_id, ward, bed, status, mrn in _fetch(connection, beds):
        days = round(occupied.get(bed_id, 0.0), 2)
        yield [
            ward,
            bed,
            status,
            mrn or "",
            days,
            _percent(days, period_days),
            window.start.isoformat(),
            window.end.isoformat(),
        ]


def _stay_queries(
    connection: Connection, ward: str | None, window: _Window
) -> tuple[Select[*tuple[Any, ...]], ...]:
    """The stays that overlap the window, as (bed id, admitted at, discharged at or None).

    A stay is open while its admission is active and has no discharge, and ended by its discharge
    otherwise; an inactive admission without a discharge has no end and is no stay. Each part is one
    index range (the active admissions; the discharges after the window's start), not every admission
    ever made before the window's end. Open stays are not filtered on ``admitted_at < until``: one
    admitted later covers no time of the window anyway, and the condition made SQLite range over
    ``admitted_at`` (most of a million admissions) instead of the few active ones.
    """
    admitted_at = _utc_time(connection, PatientAdmission.admitted_at)
    open_stays = select(PatientAdmission.bed_id, admitted_at).where(
        ADMISSION_IS_ACTIVE, ~exists().where(PatientDischarge.admission_id == PatientAdmission.id)
    )
    ended_stays = (
        select(PatientAdmission.bed_id, admitted_at, _utc_time(connection, PatientDischarge.discharged_at))
        .join(PatientAdmission, PatientAdmission.id == PatientDischarge.admission_id)
        .where(PatientDischarge.discharged_at > window.since, PatientAdmission.admitted_at < window.until)
    )
    if not ward:
        return open_stays, ended_stays
    in_ward = select(WardBed.id).join(Ward, Ward.id == WardBed.ward_id).where(Ward.code == ward)
    return tuple(query.where(PatientAdmission.bed_id.in_(in_ward)) for query in (open_stays, ended_stays))


def _stays(connection: Connection, ward: str | None, window: _Window) -> Iterator[Any]:
    """(bed id, admitted at, discharged at or None: naive UTC) of every stay that overlaps the window."""
    open_stays, ended_stays = _stay_queries(connection, ward, window)
    for bed_id, admitted_at in _fetch(connection, open_stays):
        yield bed_id, admitted_at, None
    yield from _fetch(connection, ended_stays)


def _occupied_days(connection: Connection, ward: str | None, window: _Window) -> dict[int, float]:
    """Days each bed was occupied in the window, by bed id (beds with no stay are absent)."""
    since, until = _naive_utc(window.since), _naive_utc(window.until)
    stays_by_bed: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for bed_id, admitted, discharged in _stays(connection, ward, window):
        left = discharged if discharged is not None else until
        stays_by_bed[bed_id].append((max(admitted, since), min(left, until)))
    return {bed_id: _days_covered(intervals) for bed_id, intervals in stays_by_bed.items()}


def _days_covered(intervals: list[tuple[datetime, datetime]]) -> float:
    """Days covered by the union of the intervals: overlapping stays (a backdated admission, say) count
    once, so a bed is never more than 100% used."""
    covered, reach = 0.0, None
    for begin, finish in sorted(intervals):
        start = begin if reach is None else max(begin, reach)
        if finish > start:
            covered += (finish - start).total_seconds()
            reach = finish if reach is None else max(reach, finish)
    return covered / 86_400


def export_patients(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """The quick list: every patient with their current bed, ward, admission date and reason, if any."""
    active = and_(PatientAdmission.patient_id == Patient.id, ADMISSION_IS_ACTIVE)
    query = _in_ward(
        _patient_stay(connection)
        .join(User, User.id == Patient.user_id)
        .outerjoin(PatientAdmission, active)
        .outerjoin(WardBed, WardBed.id == PatientAdmission.bed_id)
        .outerjoin(Ward, Ward.id == WardBed.ward_id)
        .order_by(_sorted_not_walked(Patient.mrn)),
        request.ward,
    )
    return ReportStream(EXPORT_HEADER, _export_rows(connection, query))


def _sorted_not_walked(column: Any) -> Any:
    """``column`` as an ORDER BY term that gives the same order but that no index provides.

    Given the bare column, SQLite reads every patient through the ``mrn`` index, which visits the
    table (and then the users) in random order: 2.5 times slower than reading the table in order and
    sorting. An expression (the same text, so the same order everywhere) makes it sort.
    """
    return column.concat("")


def _export_rows(connection: Connection, query: Select[*tuple[Any, ...]]) -> Iterator[list[Any]]:
    for mrn, first, last, email, phone, bed, ward, admitted, reason in _fetch(connection, query):
        yield [
            mrn,
            _full_name(first, last),
            email or "",
            phone or "",
            bed or "",
            ward or "",
            _iso(admitted) if admitted is not None else "",
            reason or "",
        ]


QUERIES: dict[ReportType, Callable[[Connection, ReportRequest, datetime], ReportStream]] = {
    ReportType.OCCUPANCY: occupancy,
    ReportType.PATIENT_LIST: patient_list,
    ReportType.ADMISSION_DISCHARGE: admission_discharge,
    ReportType.BED_UTILIZATION: bed_utilization,
    ReportType.EXPORT_PATIENTS: export_patients,
}


def stream_report(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """The rows of one report, as of ``now``, produced as they are read (on ``connection``, still open)."""
    return QUERIES[request.report_type](connection, request, now)


def build_report(connection: Connection, request: ReportRequest, now: datetime) -> ReportTable:
    """The rows of one report, as of ``now``, all in memory."""
    stream = stream_report(connection, request, now)
    return ReportTable(stream.header, list(stream.rows))

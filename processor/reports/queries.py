"""The report queries: a few joins and GROUP BYs each, never a query per ward, bed or patient.

Every function takes a connection and a ``ReportRequest`` and returns a ``ReportTable``. Dates are UTC
calendar days; a period ``start..end`` includes both days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, and_, case, func, select

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


@dataclass
class ReportTable:
    """A report's header and rows, ready to write as CSV."""

    header: list[str]
    rows: list[list[Any]] = field(default_factory=list)


# A patient and their stay: patient_list and export_patients read the same columns.
PATIENT_STAY = (
    Patient.mrn,
    User.first_name,
    User.last_name,
    User.email,
    Patient.phone,
    WardBed.code,
    Ward.code,
    PatientAdmission.admitted_at,
    PatientAdmission.reason,
)


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


def occupancy(connection: Connection, request: ReportRequest, now: datetime) -> ReportTable:
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
    table = ReportTable(
        ["ward", "ward_name", "total_beds", "occupied", "available", "maintenance", "occupancy_pct"]
    )
    totals = [0, 0, 0, 0]
    for code, name, *values in connection.execute(query):
        counts = [int(value) for value in values]
        table.rows.append([code, name, *counts, _percent(counts[1], counts[0])])
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    table.rows.append(["TOTAL", "", *totals, _percent(totals[1], totals[0])])
    return table


def _admission_join(query: AnySelect) -> AnySelect:
    return (
        query.join(Patient, Patient.id == PatientAdmission.patient_id)
        .join(User, User.id == Patient.user_id)
        .join(WardBed, WardBed.id == PatientAdmission.bed_id)
        .join(Ward, Ward.id == WardBed.ward_id)
    )


def patient_list(connection: Connection, request: ReportRequest, now: datetime) -> ReportTable:
    """Every currently admitted patient, with days admitted; filters: ward, admission day range."""
    query = _in_ward(
        _admission_join(select(*PATIENT_STAY).select_from(PatientAdmission))
        .where(
            PatientAdmission.is_active.is_(True),
            *_in_days(PatientAdmission.admitted_at, request.start, request.end),
        )
        .order_by(Ward.code, WardBed.code),
        request.ward,
    )
    table = ReportTable(
        ["patient_id", "name", "email", "phone", "bed", "ward", "admission_date", "days_admitted", "reason"]
    )
    for mrn, first, last, email, phone, bed, ward, admitted_at, reason in connection.execute(query):
        admitted = _utc(admitted_at)
        table.rows.append(
            [
                mrn,
                _full_name(first, last),
                email or "",
                phone or "",
                bed,
                ward,
                admitted.isoformat(),
                (now.date() - admitted.date()).days,
                reason,
            ]
        )
    return table


def admission_discharge(connection: Connection, request: ReportRequest, now: datetime) -> ReportTable:
    """Discharges with length of stay (calendar days) and status; filters: ward, discharge day range."""
    query = _in_ward(
        _admission_join(
            select(
                PatientDischarge.discharged_at,
                Patient.mrn,
                User.first_name,
                User.last_name,
                Ward.code,
                WardBed.code,
                PatientAdmission.admitted_at,
                PatientDischarge.discharge_status,
            )
            .select_from(PatientDischarge)
            .join(PatientAdmission, PatientAdmission.id == PatientDischarge.admission_id)
        )
        .where(*_in_days(PatientDischarge.discharged_at, request.start, request.end))
        .order_by(PatientDischarge.discharged_at, Patient.mrn),
        request.ward,
    )
    table = ReportTable(
        [
            "discharge_date",
            "patient_id",
            "name",
            "ward",
            "bed",
            "admission_date",
            "length_of_stay_days",
            "discharge_status",
        ]
    )
    for discharged_at, mrn, first, last, ward, bed, admitted_at, status in connection.execute(query):
        discharged, admitted = _utc(discharged_at), _utc(admitted_at)
        table.rows.append(
            [
                discharged.isoformat(),
                mrn,
                _full_name(first, last),
                ward,
                bed,
                admitted.isoformat(),
                (discharged.date() - admitted.date()).days,
                status,
            ]
        )
    return table


def utilization_period(request: ReportRequest, now: datetime) -> tuple[date, date]:
    """The days a bed_utilization report covers: the request's, by default the last 30 days."""
    end = request.end or now.date()
    start = request.start or end - timedelta(days=DEFAULT_UTILIZATION_DAYS - 1)
    return start, end


def bed_utilization(connection: Connection, request: ReportRequest, now: datetime) -> ReportTable:
    """Every bed: status, current patient, days occupied in the period and utilization % of it."""
    start, end = utilization_period(request, now)
    period_start, period_end = _day_start(start), min(_day_start(end + timedelta(days=1)), now)
    beds = _in_ward(
        select(WardBed.id, Ward.code, WardBed.code, WardBed.status, Patient.mrn)
        .join(Ward, Ward.id == WardBed.ward_id)
        .outerjoin(Patient, Patient.id == WardBed.current_patient_id)
        .order_by(Ward.code, WardBed.code),
        request.ward,
    )
    stays = _in_ward(
        select(PatientAdmission.bed_id, PatientAdmission.admitted_at, PatientDischarge.discharged_at)
        .outerjoin(PatientDischarge, PatientDischarge.admission_id == PatientAdmission.id)
        .join(WardBed, WardBed.id == PatientAdmission.bed_id)
        .join(Ward, Ward.id == WardBed.ward_id)
        .where(PatientAdmission.admitted_at < period_end)
        # Open stays, and ended ones by their discharge; an inactive admission without one has no end.
        .where(PatientAdmission.is_active.is_(True) | PatientDischarge.id.is_not(None))
        .where(PatientDischarge.discharged_at.is_(None) | (PatientDischarge.discharged_at > period_start)),
        request.ward,
    )
    stays_by_bed: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for bed_id, admitted_at, discharged_at in connection.execute(stays):
        left = _utc(discharged_at) if discharged_at is not None else period_end
        stays_by_bed[bed_id].append((max(_utc(admitted_at), period_start), min(left, period_end)))
    occupied = {bed_id: _days_covered(intervals) for bed_id, intervals in stays_by_bed.items()}
    period_days = (end - start).days + 1
    table = ReportTable(
        [
            "ward",
            "bed",
            "status",
            "current_patient",
            "days_occupied",
            "utilization_pct",
            "period_start",
            "period_end",
        ]
    )
    for bed_id, ward, bed, status, mrn in connection.execute(beds):
        days = round(occupied.get(bed_id, 0.0), 2)
        table.rows.append(
            [
                ward,
                bed,
                status,
                mrn or "",
                days,
                _percent(days, period_days),
                start.isoformat(),
                end.isoformat(),
            ]
        )
    return table


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


def export_patients(connection: Connection, request: ReportRequest, now: datetime) -> ReportTable:
    """The quick list: every patient with their current bed, ward, admission date and reason, if any."""
    active = and_(PatientAdmission.patient_id == Patient.id, PatientAdmission.is_active.is_(True))
    query = _in_ward(
        select(*PATIENT_STAY)
        .join(User, User.id == Patient.user_id)
        .outerjoin(PatientAdmission, active)
        .outerjoin(WardBed, WardBed.id == PatientAdmission.bed_id)
        .outerjoin(Ward, Ward.id == WardBed.ward_id)
        .order_by(Patient.mrn),
        request.ward,
    )
    table = ReportTable(["patient_id", "name", "email", "phone", "bed", "ward", "admission_date", "reason"])
    for mrn, first, last, email, phone, bed, ward, admitted_at, reason in connection.execute(query):
        admitted = _utc(admitted_at).isoformat() if admitted_at is not None else ""
        table.rows.append(
            [
                mrn,
                _full_name(first, last),
                email or "",
                phone or "",
                bed or "",
                ward or "",
                admitted,
                reason or "",
            ]
        )
    return table


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


QUERIES: dict[ReportType, Callable[[Connection, ReportRequest, datetime], ReportTable]] = {
    ReportType.OCCUPANCY: occupancy,
    ReportType.PATIENT_LIST: patient_list,
    ReportType.ADMISSION_DISCHARGE: admission_discharge,
    ReportType.BED_UTILIZATION: bed_utilization,
    ReportType.EXPORT_PATIENTS: export_patients,
}


def build_report(connection: Connection, request: ReportRequest, now: datetime) -> ReportTable:
    """The rows of one report, as of ``now``."""
    return QUERIES[request.report_type](connection, request, now)

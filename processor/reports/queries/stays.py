"""patient_list, admission_discharge and export_patients: patients and their stays.

A stay's bed is its admission's ``bed_id``, which a transfer moves: the current bed of a patient (the
patient list, the export) and the last bed of a discharged stay (admission_discharge, one row per stay
from admission to discharge).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
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
from processor.core.report_request import ReportRequest
from processor.reports.queries.common import (
    ADMISSION_IS_ACTIVE,
    AnySelect,
    LocalTimes,
    ReportStream,
    fetch,
    full_name,
    in_days,
    in_ward,
    utc_time,
    zone_of,
)

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
EXPORT_HEADER = ["patient_id", "name", "email", "phone", "bed", "ward", "admission_date", "reason"]


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
        utc_time(connection, PatientAdmission.admitted_at),
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
    """Every currently admitted patient, with days admitted (local calendar days from the admission's
    day to today); filters: ward, admission day range."""
    zone = zone_of(now)
    admitted_in = in_days(PatientAdmission.admitted_at, request.start, request.end, zone)
    query = in_ward(
        _admission_join(_patient_stay(connection).select_from(PatientAdmission))
        .where(ADMISSION_IS_ACTIVE, *admitted_in)
        .order_by(Ward.code, WardBed.code),
        request.ward,
    )
    rows = _patient_list_rows(connection, query, now.date(), LocalTimes(zone))
    return ReportStream(PATIENT_LIST_HEADER, rows)


def _patient_list_rows(
    connection: Connection, query: Select[*tuple[Any, ...]], today: date, times: LocalTimes
) -> Iterator[list[Any]]:
    iso, day = times.iso, times.day
    for mrn, first, last, email, phone, bed, ward, admitted, reason in fetch(connection, query):
        yield [
            mrn,
            full_name(first, last),
            email or "",
            phone or "",
            bed,
            ward,
            iso(admitted),
            (today - day(admitted)).days,
            reason,
        ]


def admission_discharge(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """Discharges with length of stay (local calendar days) and status; filters: ward, discharge day
    range."""
    zone = zone_of(now)
    query = in_ward(
        _admission_join(
            select(
                utc_time(connection, PatientDischarge.discharged_at),
                Patient.mrn,
                User.first_name,
                User.last_name,
                Ward.code,
                WardBed.code,
                utc_time(connection, PatientAdmission.admitted_at),
                PatientDischarge.discharge_status,
            )
            .select_from(PatientDischarge)
            .join(PatientAdmission, PatientAdmission.id == PatientDischarge.admission_id)
        )
        .where(*in_days(PatientDischarge.discharged_at, request.start, request.end, zone))
        .order_by(PatientDischarge.discharged_at, Patient.mrn),
        request.ward,
    )
    return ReportStream(DISCHARGES_HEADER, _discharge_rows(connection, query, LocalTimes(zone)))


def _discharge_rows(
    connection: Connection, query: Select[*tuple[Any, ...]], times: LocalTimes
) -> Iterator[list[Any]]:
    iso, day = times.iso, times.day
    for discharged, mrn, first, last, ward, bed, admitted, status in fetch(connection, query):
        yield [
            iso(discharged),
            mrn,
            full_name(first, last),
            ward,
            bed,
            iso(admitted),
            (day(discharged) - day(admitted)).days,
            status,
        ]


def export_patients(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """The quick list: every patient with their current bed, ward, admission date and reason, if any."""
    active = and_(PatientAdmission.patient_id == Patient.id, ADMISSION_IS_ACTIVE)
    query = in_ward(
        _patient_stay(connection)
        .join(User, User.id == Patient.user_id)
        .outerjoin(PatientAdmission, active)
        .outerjoin(WardBed, WardBed.id == PatientAdmission.bed_id)
        .outerjoin(Ward, Ward.id == WardBed.ward_id)
        .order_by(_sorted_not_walked(Patient.mrn)),
        request.ward,
    )
    return ReportStream(EXPORT_HEADER, _export_rows(connection, query, LocalTimes(zone_of(now))))


def _sorted_not_walked(column: Any) -> Any:
    """``column`` as an ORDER BY term that gives the same order but that no index provides.

    Given the bare column, SQLite reads every patient through the ``mrn`` index, which visits the
    table (and then the users) in random order: 2.5 times slower than reading the table in order and
    sorting. An expression (the same text, so the same order everywhere) makes it sort.
    """
    return column.concat("")


def _export_rows(
    connection: Connection, query: Select[*tuple[Any, ...]], times: LocalTimes
) -> Iterator[list[Any]]:
    iso = times.iso
    for mrn, first, last, email, phone, bed, ward, admitted, reason in fetch(connection, query):
        yield [
            mrn,
            full_name(first, last),
            email or "",
            phone or "",
            bed or "",
            ward or "",
            iso(admitted) if admitted is not None else "",
            reason or "",
        ]

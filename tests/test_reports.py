"""The reports' numbers on a known dataset, with a fixed clock: counts, days, lengths of stay, filters."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy import text as sa_text

from processor.adapters.database.models import (
    Patient,
    PatientAdmission,
    PatientDischarge,
    User,
    Ward,
    WardBed,
)
from processor.adapters.outbox import ExcelCsvWriter
from processor.core.report_request import ReportRequest, ReportType
from processor.operations.transfer_patients.tables import BedTransfer
from processor.reports.files import write_table, write_to_stream
from processor.reports.queries import ReportStream, build_report, stream_report
from tests.conftest import Database

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def hospital(database: Database) -> Database:
    """Wards A (3 beds, one in maintenance), B (1 bed), E (no beds) and closed ward X; four patients.

    p1: A1 2026-10-30 10:00 → discharged 2026-11-02 09:00 (across the month end), recovered
    p2: A1 since 2026-11-20 08:00;  p3: B1 since 2026-11-25 23:30
    p4: A2 2026-09-01 → 2026-09-05, transferred
    """
    with database.engine.begin() as c:
        wards = {
            code: c.execute(
                insert(Ward).returning(Ward.id),
                {"code": code, "name": name, "is_active": active, "created_at": NOW},
            ).scalar_one()
            for code, name, active in (
                ("A", "Alpha", True),
                ("B", "Beta", True),
                ("E", "Empty", True),
                ("X", "Closed", False),
            )
        }
        beds = {
            code: c.execute(
                insert(WardBed).returning(WardBed.id),
                {
                    "code": code,
                    "ward_id": wards[code[0]],
                    "bed_number": code[1:],
                    "status": "maintenance" if code == "A3" else "available",
                    "updated_at": NOW,
                },
            ).scalar_one()
            for code in ("A1", "A2", "A3", "B1", "X1")
        }
        patients = {}
        for n in range(1, 5):
            user = c.execute(
                insert(User).returning(User.id),
                {
                    "username": f"u{n}",
                    "email": f"p{n}@example.org",
                    "first_name": f"First{n}",
                    "last_name": f"Last{n}",
                    "created_at": NOW,
                },
            ).scalar_one()
            patients[n] = c.execute(
                insert(Patient).returning(Patient.id),
                {"user_id": user, "mrn": f"P{n}", "phone": f"555-000{n}", "created_at": NOW},
            ).scalar_one()
        stays = [
            (1, "A1", "2026-10-30T10:00", "2026-11-02T09:00", "recovered"),
            (2, "A1", "2026-11-20T08:00", None, None),
            (3, "B1", "2026-11-25T23:30", None, None),
            (4, "A2", "2026-09-01T00:00", "2026-09-05T00:00", "transferred"),
        ]
        for n, bed, admitted, discharged, status in stays:
            admission = c.execute(
                insert(PatientAdmission).returning(PatientAdmission.id),
                {
                    "patient_id": patients[n],
                    "bed_id": beds[bed],
                    "admitted_at": at(admitted),
                    "reason": f"reason{n}",
                    "is_active": discharged is None,
                    "created_at": NOW,
                },
            ).scalar_one()
            if discharged:
                c.execute(
                    insert(PatientDischarge),
                    {
                        "admission_id": admission,
                        "patient_id": patients[n],
                        "discharged_at": at(discharged),
                        "discharge_status": status,
                        "created_at": NOW,
                    },
                )
            else:
                c.execute(
                    WardBed.__table__.update()
                    .where(WardBed.id == beds[bed])
                    .values(status="occupied", current_patient_id=patients[n])
                )
    return database


def report(db: Database, report_type: ReportType, **filters: Any) -> list[list[Any]]:
    with db.engine.connect() as connection:
        table = build_report(connection, ReportRequest(report_type, **filters), NOW)
    return [table.header, *table.rows]


def test_occupancy_per_active_ward_with_an_empty_ward_and_a_total(hospital: Database) -> None:
    assert report(hospital, ReportType.OCCUPANCY) == [
        ["ward", "ward_name", "total_beds", "occupied", "available", "maintenance", "occupancy_pct"],
        ["A", "Alpha", 3, 1, 1, 1, 33.3],
        ["B", "Beta", 1, 1, 0, 0, 100.0],
        ["E", "Empty", 0, 0, 0, 0, 0.0],
        ["TOTAL", "", 4, 2, 1, 1, 50.0],
    ]


def test_occupancy_of_one_ward(hospital: Database) -> None:
    assert report(hospital, ReportType.OCCUPANCY, ward="A")[1:] == [
        ["A", "Alpha", 3, 1, 1, 1, 33.3],
        ["TOTAL", "", 3, 1, 1, 1, 33.3],
    ]


def test_patient_list_shows_admitted_patients_and_days_admitted(hospital: Database) -> None:
    rows = report(hospital, ReportType.PATIENT_LIST)
    assert rows[0] == [
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
    assert [(r[0], r[1], r[4], r[5], r[6][:16], r[7], r[8]) for r in rows[1:]] == [
        ("P2", "First2 Last2", "A1", "A", "2026-11-20T08:00", 6, "reason2"),
        ("P3", "First3 Last3", "B1", "B", "2026-11-25T23:30", 1, "reason3"),
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"ward": "B"}, ["P3"]),
        ({"start": date(2026, 11, 21)}, ["P3"]),
        ({"end": date(2026, 11, 20)}, ["P2"]),
        ({"start": date(2026, 11, 20), "end": date(2026, 11, 25)}, ["P2", "P3"]),
        ({"ward": "E"}, []),
    ],
)
def test_patient_list_filters(hospital: Database, filters: dict[str, Any], expected: list[str]) -> None:
    assert [row[0] for row in report(hospital, ReportType.PATIENT_LIST, **filters)[1:]] == expected


def test_discharges_with_length_of_stay_across_month_ends(hospital: Database) -> None:
    rows = report(hospital, ReportType.ADMISSION_DISCHARGE)
    assert rows[0] == [
        "discharge_date",
        "patient_id",
        "name",
        "ward",
        "bed",
        "admission_date",
        "length_of_stay_days",
        "discharge_status",
    ]
    assert [(r[0][:10], r[1], r[3], r[5][:10], r[6], r[7]) for r in rows[1:]] == [
        ("2026-09-05", "P4", "A", "2026-09-01", 4, "transferred"),
        ("2026-11-02", "P1", "A", "2026-10-30", 3, "recovered"),
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"start": date(2026, 11, 1)}, ["P1"]),
        ({"end": date(2026, 11, 1)}, ["P4"]),
        ({"start": date(2026, 11, 2), "end": date(2026, 11, 2)}, ["P1"]),
        ({"ward": "B"}, []),
    ],
)
def test_discharge_filters(hospital: Database, filters: dict[str, Any], expected: list[str]) -> None:
    assert [row[1] for row in report(hospital, ReportType.ADMISSION_DISCHARGE, **filters)[1:]] == expected


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


def utilization(db: Database, **filters: Any) -> dict[str, tuple[Any, ...]]:
    """By bed code: status, current patient, days occupied, utilization %, period start and end (the
    names beside the codes left out; the test below checks them)."""
    rows = report(db, ReportType.BED_UTILIZATION, **filters)
    assert rows[0] == UTILIZATION_HEADER
    return {row[2]: (row[4], row[5], *row[7:]) for row in rows[1:]}


def test_bed_utilization_names_the_ward_the_bed_and_the_current_patient_beside_their_codes(
    hospital: Database,
) -> None:
    """The seed's columns: ward name, bed number and the current patient's name; empty for a free bed."""
    rows = {row[2]: row[:7] for row in report(hospital, ReportType.BED_UTILIZATION)[1:]}
    assert rows["A1"] == ["A", "Alpha", "A1", "1", "occupied", "P2", "First2 Last2"]
    assert rows["A2"] == ["A", "Alpha", "A2", "2", "available", "", ""]


def test_bed_utilization_over_a_period_spanning_a_month_end(hospital: Database) -> None:
    beds = utilization(hospital, start=date(2026, 10, 31), end=date(2026, 11, 1))
    assert beds["A1"] == ("occupied", "P2", 2.0, 100.0, "2026-10-31", "2026-11-01")
    assert beds["A2"][2:4] == (0.0, 0.0) and beds["B1"][2:4] == (0.0, 0.0)
    assert set(beds) == {"A1", "A2", "A3", "B1", "X1"}


def test_bed_utilization_counts_ongoing_stays_until_now(hospital: Database) -> None:
    beds = utilization(hospital, start=date(2026, 11, 20), end=date(2026, 11, 26))
    assert beds["A1"][2:4] == (6.17, 88.1)
    assert beds["B1"][2:4] == (0.52, 7.4)


def test_bed_utilization_defaults_to_the_last_30_days(hospital: Database) -> None:
    beds = utilization(hospital)
    assert beds["A1"][4:] == ("2026-10-28", "2026-11-26")
    assert beds["A1"][2] == pytest.approx(2.96 + 6.17, abs=0.011)
    assert beds["A2"][2] == 0.0


def test_bed_utilization_of_one_ward(hospital: Database) -> None:
    assert set(utilization(hospital, ward="B")) == {"B1"}


def test_the_patient_export_lists_every_patient_with_any_current_bed(hospital: Database) -> None:
    rows = report(hospital, ReportType.EXPORT_PATIENTS)
    assert rows[0] == ["patient_id", "name", "email", "phone", "bed", "ward", "admission_date", "reason"]
    assert [(r[0], r[4], r[5], r[7]) for r in rows[1:]] == [
        ("P1", "", "", ""),
        ("P2", "A1", "A", "reason2"),
        ("P3", "B1", "B", "reason3"),
        ("P4", "", "", ""),
    ]


# Streaming, files and query plans (issue 7: every report fast over a large history).


def test_a_streamed_report_has_exactly_the_rows_of_the_built_one(hospital: Database) -> None:
    for report_type in ReportType:
        request = ReportRequest(report_type)
        with hospital.engine.connect() as connection:
            built = build_report(connection, request, NOW)
            stream = stream_report(connection, request, NOW)
            assert (stream.header, list(stream.rows)) == (built.header, built.rows)


def test_bed_utilization_ends_a_stay_at_its_discharge_and_ignores_an_admission_without_one(
    hospital: Database,
) -> None:
    """An active admission that has a discharge ends there; an inactive one without a discharge is no
    stay at all (the report has always read them so)."""
    with hospital.engine.begin() as c:
        ids = dict(c.execute(sa_text("SELECT mrn, id FROM patients")).all())
        bed = c.execute(sa_text("SELECT id FROM ward_beds WHERE code = 'A2'")).scalar_one()
        for mrn, admitted, active in (("P1", "2026-11-22T00:00", True), ("P4", "2026-11-21T00:00", False)):
            admission = c.execute(
                insert(PatientAdmission).returning(PatientAdmission.id),
                {
                    "patient_id": ids[mrn],
                    "bed_id": bed,
                    "admitted_at": at(admitted),
                    "reason": "r",
                    "is_active": active,
                    "created_at": NOW,
                },
            ).scalar_one()
            if active:
                c.execute(
                    insert(PatientDischarge),
                    {
                        "admission_id": admission,
                        "patient_id": ids[mrn],
                        "discharged_at": at("2026-11-24T00:00"),
                        "discharge_status": "other",
                        "created_at": NOW,
                    },
                )
    beds = utilization(hospital, start=date(2026, 11, 20), end=date(2026, 11, 26))
    assert beds["A2"][2:4] == (2.0, 28.6)


EXCEL_CELLS = [
    ["=1+1", "+44 20 7946 0000", "-x", "@sum", "\ttab", "\rcr", "\nlf", "plain", 'say "hi"', "a,b"],
    ["line\nbreak", "Zoë Łukasz", "", None, 3, -4, 2.5, 0.0, "'quoted", " =space"],
]


def test_a_report_file_is_exactly_what_the_excel_safe_writer_writes(tmp_path: Path) -> None:
    header = ["patient_id", "=name", *[f"c{n}" for n in range(8)]]
    expected = tmp_path / "expected" / "report.csv"
    writer = ExcelCsvWriter(expected, header)
    for row in EXCEL_CELLS:
        writer.write(row)
    writer.close()
    written = tmp_path / "written" / "report.csv"
    assert write_table(written, ReportStream(header, iter(EXCEL_CELLS))) == len(EXCEL_CELLS)
    assert written.read_bytes() == expected.read_bytes()
    assert [path.name for path in written.parent.iterdir()] == ["report.csv"]


def test_a_report_whose_rows_fail_midway_leaves_the_destination_as_it_was(tmp_path: Path) -> None:
    def rows() -> Iterator[list[Any]]:
        yield ["P1"]
        raise RuntimeError("the database went away")

    destination = tmp_path / "report.csv"
    destination.write_text("the previous report", encoding="utf-8")
    with pytest.raises(RuntimeError):
        write_table(destination, ReportStream(["patient_id"], rows()))
    assert destination.read_text(encoding="utf-8") == "the previous report"
    assert list(tmp_path.iterdir()) == [destination]


def test_a_report_to_a_stream_has_no_bom_and_its_formula_cells_neutralised() -> None:
    out = io.StringIO()
    assert write_to_stream(out, ReportStream(["patient_id", "days"], iter([["=P1", -3], ["P2", 4]]))) == 2
    assert out.getvalue() == "patient_id,days\n'=P1,-3\nP2,4\n"


def sqlite_plans(db: Database, request: ReportRequest) -> list[str]:
    """The SQLite query plan lines of every query the report runs."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.engine.connect() as connection:
            build_report(connection, request, NOW)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    with db.engine.connect() as connection:
        return [
            str(line[-1])
            for statement, parameters in statements
            for line in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]


@pytest.mark.parametrize(
    "request_",
    [
        ReportRequest(ReportType.PATIENT_LIST),
        ReportRequest(ReportType.PATIENT_LIST, start=date(2026, 11, 1), end=date(2026, 11, 26)),
        ReportRequest(ReportType.BED_UTILIZATION, start=date(2026, 10, 28), end=date(2026, 11, 26)),
        ReportRequest(ReportType.EXPORT_PATIENTS),
    ],
    ids=["patient_list", "patient_list_dates", "bed_utilization", "export_patients"],
)
def test_on_sqlite_the_reports_find_current_admissions_without_reading_past_ones(
    hospital: Database, request_: ReportRequest
) -> None:
    """Through the partial indexes of active admissions (or by key, from a discharge), never a scan or a
    range of all admissions."""
    if hospital.backend != "sqlite":
        pytest.skip("SQLite's planner needs the partial index condition spelled as it is declared")
    plans = [line for line in sqlite_plans(hospital, request_) if " patient_admissions " in f"{line} "]
    assert plans
    allowed = ("INDEX uq_patient_admissions_active_", "INDEX ix_patient_admissions_active_", "PRIMARY KEY")
    for line in plans:
        assert any(way in line for way in allowed), line


# Transfers (transfer_patients): a stay held each bed for part of its time; the reports follow it.


def move(db: Database, mrn: str, to_bed: str, when: str) -> None:
    """Move ``mrn``'s active stay to ``to_bed`` at ``when``, as transfer_patients writes it."""
    with db.engine.begin() as c:
        patient, admission, from_bed = c.execute(
            sa_text(
                "SELECT p.id, a.id, a.bed_id FROM patients p JOIN patient_admissions a ON a.patient_id = p.id "
                "WHERE p.mrn = :mrn AND a.is_active"
            ),
            {"mrn": mrn},
        ).one()
        to = c.execute(sa_text("SELECT id FROM ward_beds WHERE code = :code"), {"code": to_bed}).scalar_one()
        c.execute(
            WardBed.__table__.update()
            .where(WardBed.id == from_bed)
            .values(status="available", current_patient_id=None)
        )
        c.execute(
            WardBed.__table__.update()
            .where(WardBed.id == to)
            .values(status="occupied", current_patient_id=patient)
        )
        c.execute(
            PatientAdmission.__table__.update().where(PatientAdmission.id == admission).values(bed_id=to)
        )
        c.execute(
            insert(BedTransfer),
            {
                "admission_id": admission,
                "from_bed_id": from_bed,
                "to_bed_id": to,
                "transferred_at": at(when),
                "reason": "moved",
                "created_at": NOW,
            },
        )


def test_bed_utilization_counts_each_bed_for_its_part_of_a_moved_stay(hospital: Database) -> None:
    """P2, in A1 since 20 Nov 08:00, moved to A2 on 23 Nov 08:00: A1 until then, A2 from then."""
    move(hospital, "P2", "A2", "2026-11-23T08:00")
    beds = utilization(hospital, start=date(2026, 11, 20), end=date(2026, 11, 26))
    assert beds["A1"] == ("available", "", 3.0, 42.9, "2026-11-20", "2026-11-26")
    assert beds["A2"] == ("occupied", "P2", 3.17, 45.3, "2026-11-20", "2026-11-26")


def test_bed_utilization_before_and_after_a_move_counts_only_the_bed_held_then(hospital: Database) -> None:
    """A period after the move counts only the new bed; one before it only the old bed, although the
    admission now names the new one."""
    move(hospital, "P2", "A2", "2026-11-23T08:00")
    after = utilization(hospital, start=date(2026, 11, 24), end=date(2026, 11, 26))
    assert (after["A1"][2], after["A2"][2]) == (0.0, 2.5)
    before = utilization(hospital, start=date(2026, 11, 20), end=date(2026, 11, 21))
    assert (before["A1"][2], before["A2"][2]) == (1.67, 0.0)


def test_bed_utilization_follows_a_stay_moved_twice_and_then_discharged(hospital: Database) -> None:
    """A1 → A2 on 22 Nov, back to A1 on 24 Nov, discharged on 25 Nov: A1 twice, A2 once, no day past
    the discharge."""
    move(hospital, "P2", "A2", "2026-11-22T00:00")
    move(hospital, "P2", "A1", "2026-11-24T00:00")
    with hospital.engine.begin() as c:
        admission, patient = c.execute(
            sa_text(
                "SELECT a.id, a.patient_id FROM patient_admissions a WHERE a.is_active AND a.reason = 'reason2'"
            )
        ).one()
        c.execute(
            insert(PatientDischarge),
            {
                "admission_id": admission,
                "patient_id": patient,
                "discharged_at": at("2026-11-25T00:00"),
                "discharge_status": "recovered",
                "created_at": NOW,
            },
        )
    beds = utilization(hospital, start=date(2026, 11, 20), end=date(2026, 11, 26))
    assert (beds["A1"][2], beds["A2"][2]) == (2.67, 2.0)


def test_bed_utilization_of_a_ward_counts_a_stay_that_left_it_for_another_ward(hospital: Database) -> None:
    """P2 moved from A1 to X1 (ward X): ward A still counts the days in A1, ward X those in X1."""
    move(hospital, "P2", "X1", "2026-11-23T08:00")
    period = {"start": date(2026, 11, 20), "end": date(2026, 11, 26)}
    assert utilization(hospital, ward="A", **period)["A1"][2] == 3.0
    assert utilization(hospital, ward="X", **period)["X1"][2] == 3.17


def test_bed_utilization_merges_a_moved_stay_with_an_overlapping_one_and_stays_under_100(
    hospital: Database,
) -> None:
    """P2 moved into A2 on 21 Nov while a backdated stay held A2 from 20 to 22 Nov: counted once."""
    move(hospital, "P2", "A2", "2026-11-21T00:00")
    with hospital.engine.begin() as c:
        ids = dict(c.execute(sa_text("SELECT mrn, id FROM patients")).all())
        a2 = c.execute(sa_text("SELECT id FROM ward_beds WHERE code = 'A2'")).scalar_one()
        admission = c.execute(
            insert(PatientAdmission).returning(PatientAdmission.id),
            {
                "patient_id": ids["P1"],
                "bed_id": a2,
                "admitted_at": at("2026-11-20T00:00"),
                "reason": "r",
                "is_active": False,
                "created_at": NOW,
            },
        ).scalar_one()
        c.execute(
            insert(PatientDischarge),
            {
                "admission_id": admission,
                "patient_id": ids["P1"],
                "discharged_at": at("2026-11-22T00:00"),
                "discharge_status": "other",
                "created_at": NOW,
            },
        )
    beds = utilization(hospital, start=date(2026, 11, 20), end=date(2026, 11, 22))
    assert beds["A2"][2:4] == (3.0, 100.0)


def test_after_a_move_the_patient_list_occupancy_and_export_show_the_new_bed(hospital: Database) -> None:
    move(hospital, "P2", "A2", "2026-11-23T08:00")
    [p2] = [row for row in report(hospital, ReportType.PATIENT_LIST)[1:] if row[0] == "P2"]
    assert (p2[4], p2[6][:16], p2[7]) == ("A2", "2026-11-20T08:00", 6)
    assert report(hospital, ReportType.OCCUPANCY, ward="A")[1] == ["A", "Alpha", 3, 1, 1, 1, 33.3]
    assert [r[4] for r in report(hospital, ReportType.EXPORT_PATIENTS)[1:] if r[0] == "P2"] == ["A2"]


def test_a_discharged_moved_stay_is_one_row_from_admission_to_discharge_in_its_last_bed(
    hospital: Database,
) -> None:
    move(hospital, "P2", "A2", "2026-11-23T08:00")
    with hospital.engine.begin() as c:
        admission, patient = c.execute(
            sa_text("SELECT id, patient_id FROM patient_admissions WHERE is_active AND reason = 'reason2'")
        ).one()
        c.execute(
            insert(PatientDischarge),
            {
                "admission_id": admission,
                "patient_id": patient,
                "discharged_at": at("2026-11-25T10:00"),
                "discharge_status": "recovered",
                "created_at": NOW,
            },
        )
    rows = report(hospital, ReportType.ADMISSION_DISCHARGE, start=date(2026, 11, 25))[1:]
    assert [(r[1], r[4], r[5][:16], r[6]) for r in rows] == [("P2", "A2", "2026-11-20T08:00", 5)]

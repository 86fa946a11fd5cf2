"""export_report's rules, on fake stores: which report requests are valid, their file names, what they write."""

from __future__ import annotations

from datetime import date

import pytest

from processor.core.report_request import ReportRequest, ReportType
from processor.operations.base import RowOutcome
from processor.operations.export_report import ExportReport
from processor.operations.export_report.rules import REPORT_TYPES
from tests.fakes import FakeStores, FakeWard, messages, payloads, problems, records_of, start

EXPORT = ExportReport()
HEADER = "report_type,start_date,end_date,ward\n"


def ward() -> FakeWard:
    ward = FakeWard()
    ward.add_ward("CARD", "Cardiology")
    ward.add_ward("PAED", "Paediatrics")
    return ward


def check(rows: str, stores: FakeStores | None = None) -> list[RowOutcome]:
    """Validate ``rows`` (after the header) as one chunk of a fresh run."""
    stores = stores or FakeStores(ward())
    return start(EXPORT).validate(records_of(EXPORT, HEADER + rows), stores)


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_each_report_type_may_be_requested_and_names_its_file(report_type: str) -> None:
    """The file name carries the type, the run's time, the operation and the line, so names never clash."""
    [outcome] = check(f"{report_type.upper()},,,\n")
    name = f"{report_type}-20261126T093000Z-op7-line2.csv"
    assert outcome.payload == (ReportRequest(ReportType(report_type)), name)
    assert outcome.created == {"report_file": name}


def test_a_request_may_name_a_period_and_a_known_ward() -> None:
    [outcome] = check("admission_discharge,2026-11-01,2026-11-30,CARD\n")
    request = ReportRequest(ReportType.ADMISSION_DISCHARGE, "CARD", date(2026, 11, 1), date(2026, 11, 30))
    assert outcome.payload == (request, "admission_discharge-CARD-20261126T093000Z-op7-line2.csv")


@pytest.mark.parametrize(
    ("row", "expected", "message"),
    [
        (
            "nonsense,,,",
            (2, "report_type", "constraint-error"),
            "report_type must be one of " + ", ".join(REPORT_TYPES),
        ),
        (",2026-11-01,,", (2, "report_type", "constraint-error"), "report_type a value is required"),
        (
            "occupancy,01/11/2026,,",
            (2, "start_date", "type-error"),
            "start_date must be a date written YYYY-MM-DD",
        ),
        (
            "occupancy,,2026-11-31,",
            (2, "end_date", "type-error"),
            "end_date must be a date written YYYY-MM-DD",
        ),
        (
            "bed_utilization,2026-11-30,2026-11-01,",
            (2, "end_date", "constraint-error"),
            "end_date is before start_date",
        ),
        ("occupancy,,,NOWARD", (2, "ward", "unknown-ward"), "ward is not a known ward"),
        ("occupancy,,,card", (2, "ward", "unknown-ward"), "ward is not a known ward"),
    ],
)
def test_a_request_that_cannot_be_run_is_an_error_row(
    row: str, expected: tuple[int, str, str], message: str
) -> None:
    """Ward codes match exactly, as everywhere else."""
    outcomes = check(row + "\n")
    assert (problems(outcomes), messages(outcomes), payloads(outcomes)) == ([expected], [message], [])


def test_a_period_of_one_day_or_open_at_either_end_is_fine() -> None:
    outcomes = check("occupancy,2026-11-01,2026-11-01,\noccupancy,2026-11-01,,\noccupancy,,2026-11-01,\n")
    assert problems(outcomes) == []


def test_wards_are_looked_up_once_per_chunk() -> None:
    stores = FakeStores(ward())
    check("occupancy,,,CARD\npatient_list,,,PAED\noccupancy,,,NOWARD\n", stores)
    assert stores.ward.lookups == {"wards_by_code": 1}


def test_apply_writes_each_requested_report_in_order_through_the_reports_store() -> None:
    stores = FakeStores(ward())
    run = start(EXPORT)
    outcomes = run.validate(
        records_of(EXPORT, HEADER + "occupancy,,,\nnonsense,,,\npatient_list,,,CARD\n"), stores
    )
    assert stores.ward.writes == []
    assert run.apply(payloads(outcomes), stores) == []
    assert [(request.report_type, name) for request, name in stores.ward.reports] == [
        (ReportType.OCCUPANCY, "occupancy-20261126T093000Z-op7-line2.csv"),
        (ReportType.PATIENT_LIST, "patient_list-CARD-20261126T093000Z-op7-line4.csv"),
    ]

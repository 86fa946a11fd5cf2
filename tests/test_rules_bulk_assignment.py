"""bulk_assignment's rules, on fake stores: which admissions are valid, their payloads, what they write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from processor.core.operation_types import BedStatus
from processor.errors import ConcurrentChange
from processor.operations.base import RowOutcome
from processor.operations.bulk_assignment import BulkAssignment
from processor.operations.bulk_assignment.ports import NewAdmission
from processor.operations.ports import CareEvent
from tests.fakes import NOW, Caregiver, FakeStores, FakeWard, messages, payloads, problems, records_of, start

ASSIGNMENT = BulkAssignment()
HEADER = "patient_id,bed_id,reason,chief_complaint,admission_date,notify\n"


def ward() -> FakeWard:
    """CARD-01 and CARD-02 available, PAED-07 in maintenance, CARD-03 holding patient 004; patients 001
    to 003 not admitted, 001 with a caregiver."""
    ward = FakeWard()
    for code in ("CARD-01", "CARD-02", "CARD-03"):
        ward.add_bed(code, "CARD")
    ward.add_bed("PAED-07", "PAED", BedStatus.MAINTENANCE.value)
    for mrn in ("001", "002", "003"):
        ward.add_patient(mrn)
    ward.add_patient("004", in_bed="CARD-03")
    ward.add_caregiver("001", Caregiver("Carl Lee", "carl@example.org", "555-0001"))
    return ward


def check(rows: str, stores: FakeStores | None = None, notify: bool = False) -> list[RowOutcome]:
    """Validate ``rows`` (after the header) as one chunk of a fresh run."""
    stores = stores or FakeStores(ward())
    return start(ASSIGNMENT, notify).validate(records_of(ASSIGNMENT, HEADER + rows), stores)


def test_a_valid_row_admits_the_patient_to_the_bed_at_the_admission_date() -> None:
    """The date's zone is kept (the same instant); without a date the admission is now."""
    stores = FakeStores(ward())
    outcomes = check(
        "001,CARD-01,Emergency,Chest pain,2026-11-20T08:30:00+01:00,\n002,CARD-02,Planned,,,\n", stores
    )
    patient, bed = stores.ward.patients["001"], stores.ward.beds["CARD-01"]
    assert payloads(outcomes)[0] == NewAdmission(
        patient.id, bed.id, datetime(2026, 11, 20, 7, 30, tzinfo=UTC), "Emergency", "Chest pain", None
    )
    assert payloads(outcomes)[1].admitted_at == NOW and payloads(outcomes)[1].chief_complaint is None


@pytest.mark.parametrize(
    ("row", "expected", "message"),
    [
        ("999,CARD-01,r,,,", (2, "patient_id", "unknown-patient"), "patient_id is not a known patient"),
        (
            "004,CARD-01,r,,,",
            (2, "patient_id", "already-admitted"),
            "the patient is already admitted (bed CARD-03)",
        ),
        ("001,NOPE-01,r,,,", (2, "bed_id", "unknown-bed"), "bed_id is not a known bed"),
        ("001,PAED-07,r,,,", (2, "bed_id", "bed-not-available"), "the bed is maintenance, not available"),
        ("001,CARD-03,r,,,", (2, "bed_id", "bed-not-available"), "the bed is occupied, not available"),
    ],
)
def test_a_patient_or_bed_that_the_ward_does_not_allow_is_an_error(
    row: str, expected: tuple[int, str, str], message: str
) -> None:
    outcomes = check(row + "\n")
    assert (problems(outcomes), messages(outcomes)) == ([expected], [message])
    assert payloads(outcomes) == []


def test_identifiers_match_exactly() -> None:
    """patient_id 1 is not 001, and bed codes are case-sensitive: no guessing which one was meant."""
    outcomes = check("1,CARD-01,r,,,\n001,card-01,r,,,\n")
    assert problems(outcomes) == [(2, "patient_id", "unknown-patient"), (3, "bed_id", "unknown-bed")]


def test_every_problem_of_a_row_is_reported() -> None:
    assert problems(check("999,NOPE-01,r,,,\n")) == [
        (2, "patient_id", "unknown-patient"),
        (2, "bed_id", "unknown-bed"),
    ]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("001,CARD-01,,,,", (2, "reason", "constraint-error")),
        (",CARD-01,r,,,", (2, "patient_id", "constraint-error")),
        ("001,CARD-01,r,,2026-11-26T09:31:00Z,", (2, "admission_date", "constraint-error")),
        ("001,CARD-01,r,,2999-01-01,", (2, "admission_date", "constraint-error")),
        ("001,CARD-01,r,,1899-12-31,", (2, "admission_date", "constraint-error")),
        ("001,CARD-01,r,,yesterday,", (2, "admission_date", "type-error")),
        ("001,CARD-01,r,,,perhaps", (2, "notify", "type-error")),
    ],
)
def test_a_row_breaking_a_field_rule_is_an_error_on_that_column(
    row: str, expected: tuple[int, str, str]
) -> None:
    """An admission date may not be in the future of the run's clock, even by a minute."""
    assert problems(check(row + "\n")) == [expected]


def test_a_second_row_for_a_bed_or_a_patient_fails_against_the_first() -> None:
    outcomes = check("001,CARD-01,r,,,\n002,CARD-01,r,,,\n001,CARD-02,r,,,\n")
    assert problems(outcomes) == [(3, "bed_id", "bed-not-available"), (4, "patient_id", "already-admitted")]
    assert messages(outcomes) == ["bed_id is the same as line 2", "patient_id is the same as line 2"]


def test_the_same_bed_in_a_later_chunk_fails_against_its_first_line() -> None:
    stores, run = FakeStores(ward()), start(ASSIGNMENT)
    run.validate(records_of(ASSIGNMENT, HEADER + "001,CARD-01,r,,,\n"), stores)
    later = run.validate(records_of(ASSIGNMENT, HEADER + "\n\n002,CARD-01,r,,,\n"), stores)
    assert (problems(later), messages(later)) == (
        [(4, "bed_id", "bed-not-available")],
        ["bed_id is the same as line 2"],
    )


def test_patients_and_beds_are_looked_up_once_per_chunk() -> None:
    stores = FakeStores(ward())
    check("001,CARD-01,r,,,\n002,CARD-02,r,,,\n999,NOPE,r,,,\n", stores)
    assert stores.ward.lookups == {"patients_by_mrn": 1, "beds_by_code": 1}


@pytest.mark.parametrize(
    ("default", "cell", "notifies"),
    [(False, "", False), (False, "yes", True), (True, "", True), (True, "no", False), (True, "0", False)],
)
def test_a_row_notifies_caregivers_when_its_cell_or_else_the_setting_says_so(
    default: bool, cell: str, notifies: bool
) -> None:
    stores = FakeStores(ward())
    [admission] = payloads(check(f"001,CARD-01,r,,2026-11-25,{cell}\n", stores, notify=default))
    expected = CareEvent(
        "admission",
        stores.ward.patients["001"].id,
        "001",
        "CARD",
        "CARD-01",
        datetime(2026, 11, 25, tzinfo=UTC),
    )
    assert admission.event == (expected if notifies else None)


def test_apply_admits_and_returns_a_notification_line_per_caregiver() -> None:
    """A patient without caregivers gets one "skipped" line; rows without notify none at all."""
    stores = FakeStores(ward())
    run = start(ASSIGNMENT)
    outcomes = run.validate(
        records_of(ASSIGNMENT, HEADER + "001,CARD-01,r,,,yes\n002,CARD-02,r,,,yes\n003,PAED-07,r,,,yes\n"),
        stores,
    )
    assert stores.ward.writes == []
    lines = run.apply(payloads(outcomes), stores)
    assert [(n.patient_id, n.caregiver_name, n.kind, n.ward, n.bed, n.status) for n in lines] == [
        ("001", "Carl Lee", "admission", "CARD", "CARD-01", "queued"),
        ("002", "", "admission", "CARD", "CARD-02", "skipped"),
    ]
    assert stores.ward.admitted == payloads(outcomes)
    assert (
        stores.ward.beds["CARD-01"].status == "occupied" and stores.ward.patients["001"].bed_code == "CARD-01"
    )


def test_apply_without_notifications_asks_for_none() -> None:
    stores = FakeStores(ward())
    run = start(ASSIGNMENT)
    outcomes = run.validate(records_of(ASSIGNMENT, HEADER + "001,CARD-01,r,,,\n"), stores)
    assert run.apply(payloads(outcomes), stores) == [] and stores.ward.notified == []


def test_a_bed_taken_since_validation_stops_the_chunk_with_concurrent_change() -> None:
    """The pipeline then rolls the file back and validates it again."""
    stores = FakeStores(ward())
    run = start(ASSIGNMENT)
    outcomes = run.validate(records_of(ASSIGNMENT, HEADER + "001,CARD-01,r,,,\n"), stores)
    stores.ward.occupy(stores.ward.patients["002"], stores.ward.beds["CARD-01"], NOW)  # another daemon
    with pytest.raises(ConcurrentChange):
        run.apply(payloads(outcomes), stores)
    assert stores.ward.admitted == []

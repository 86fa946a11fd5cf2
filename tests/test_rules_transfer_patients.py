"""transfer_patients' rules, on fake stores: which moves are valid, their payloads, what they write."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from processor.core.operation_types import BedStatus
from processor.errors import ConcurrentChange
from processor.operations.base import RowOutcome
from processor.operations.ports import CareEvent
from processor.operations.transfer_patients import TransferPatients
from processor.operations.transfer_patients.ports import NewTransfer
from tests.fakes import NOW, Caregiver, FakeStores, FakeWard, messages, payloads, problems, records_of, start

TRANSFER = TransferPatients()
HEADER = "patient_id,to_bed_id,reason,transfer_date,notify\n"
ADMITTED = datetime(2026, 11, 19, tzinfo=UTC)


def ward() -> FakeWard:
    """Patients 001 in CARD-01 and 002 in CARD-02 (admitted 19 Nov, 001 with a caregiver), 003 not
    admitted; CARD-03 and SURG-01 available, PAED-07 in maintenance."""
    ward = FakeWard()
    for code in ("CARD-01", "CARD-02", "CARD-03"):
        ward.add_bed(code, "CARD")
    ward.add_bed("SURG-01", "SURG")
    ward.add_bed("PAED-07", "PAED", BedStatus.MAINTENANCE.value)
    ward.add_patient("001", in_bed="CARD-01", since=ADMITTED)
    ward.add_patient("002", in_bed="CARD-02", since=ADMITTED)
    ward.add_patient("003")
    ward.add_caregiver("001", Caregiver("Carl Lee", "carl@example.org", "555-0001"))
    return ward


def check(rows: str, stores: FakeStores | None = None, notify: bool = False) -> list[RowOutcome]:
    """Validate ``rows`` (after the header) as one chunk of a fresh run."""
    stores = stores or FakeStores(ward())
    return start(TRANSFER, notify).validate(records_of(TRANSFER, HEADER + rows), stores)


def test_a_valid_row_moves_the_stay_to_the_new_bed_at_the_transfer_date() -> None:
    """The payload names the admission, the bed left and the bed taken; without a date the move is now."""
    stores = FakeStores(ward())
    outcomes = check("001,SURG-01,Surgery,2026-11-20T08:30:00+01:00,\n002,CARD-03,Quieter room,,\n", stores)
    patient, beds = stores.ward.patients["001"], stores.ward.beds
    assert payloads(outcomes)[0] == NewTransfer(
        patient.id,
        patient.admission_id or 0,
        beds["CARD-01"].id,
        beds["SURG-01"].id,
        datetime(2026, 11, 20, 7, 30, tzinfo=UTC),
        "Surgery",
        None,
    )
    assert payloads(outcomes)[1].transferred_at == NOW


@pytest.mark.parametrize(
    ("row", "expected", "message"),
    [
        ("999,CARD-03,r,,", (2, "patient_id", "unknown-patient"), "patient_id is not a known patient"),
        ("003,CARD-03,r,,", (2, "patient_id", "not-admitted"), "the patient has no active admission"),
        ("001,NOPE-01,r,,", (2, "to_bed_id", "unknown-bed"), "to_bed_id is not a known bed"),
        ("001,CARD-01,r,,", (2, "to_bed_id", "same-bed"), "the patient is already in this bed"),
        ("001,CARD-02,r,,", (2, "to_bed_id", "bed-not-available"), "the bed is occupied, not available"),
        ("001,PAED-07,r,,", (2, "to_bed_id", "bed-not-available"), "the bed is maintenance, not available"),
        (
            "001,CARD-03,r,2026-11-18,",
            (2, "transfer_date", "transfer-before-admission"),
            "transfer_date is before the admission (2026-11-19T00:00:00+00:00)",
        ),
    ],
)
def test_a_patient_or_bed_that_the_ward_does_not_allow_is_an_error(
    row: str, expected: tuple[int, str, str], message: str
) -> None:
    outcomes = check(row + "\n")
    assert (problems(outcomes), messages(outcomes)) == ([expected], [message])
    assert payloads(outcomes) == []


def test_a_transfer_at_the_moment_of_admission_is_allowed() -> None:
    assert problems(check("001,CARD-03,r,2026-11-19T00:00:00Z,\n")) == []


def test_a_transfer_may_not_go_back_before_the_stays_last_move() -> None:
    """After a move on 22 Nov, the stay's next move cannot be dated 21 Nov: the segments would overlap."""
    stores = FakeStores(ward())
    stores.ward.move(
        stores.ward.patients["001"], stores.ward.beds["CARD-03"], datetime(2026, 11, 22, tzinfo=UTC)
    )
    outcomes = check("001,SURG-01,r,2026-11-21,\n", stores)
    assert problems(outcomes) == [(2, "transfer_date", "transfer-before-admission")]
    assert messages(outcomes) == [
        "transfer_date is before the patient's last transfer (2026-11-22T00:00:00+00:00)"
    ]


def test_a_patient_whose_bed_does_not_record_them_is_not_moved() -> None:
    """As for discharges: the registry is inconsistent, so wardbulk does not guess which bed to free."""
    stores = FakeStores(ward())
    stores.ward.patients["001"] = replace(stores.ward.patients["001"], bed_patient_id=None)
    assert problems(check("001,CARD-03,r,,\n", stores)) == [(2, "patient_id", "constraint-error")]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("001,CARD-03,,,", (2, "reason", "constraint-error")),
        (",CARD-03,r,,", (2, "patient_id", "constraint-error")),
        ("001,,r,,", (2, "to_bed_id", "constraint-error")),
        ("001,CARD-03,r,2026-11-26T09:31:00Z,", (2, "transfer_date", "constraint-error")),
        ("001,CARD-03,r,tomorrow,", (2, "transfer_date", "type-error")),
        ("001,CARD-03,r,,perhaps", (2, "notify", "type-error")),
    ],
)
def test_a_row_breaking_a_field_rule_is_an_error_on_that_column(
    row: str, expected: tuple[int, str, str]
) -> None:
    """A transfer date may not be in the future of the run's clock, even by a minute."""
    assert problems(check(row + "\n")) == [expected]


def test_a_missing_cell_is_reported() -> None:
    assert problems(check("001,CARD-03\n")) == [(2, "reason", "missing-cell")]


def test_a_second_row_for_a_patient_or_a_target_bed_fails_against_the_first() -> None:
    """Never a guess: the later row is the error, naming the first line, even when that one failed."""
    outcomes = check("001,CARD-03,r,,\n002,CARD-03,r,,\n001,SURG-01,r,,\n")
    assert problems(outcomes) == [
        (3, "to_bed_id", "bed-not-available"),
        (4, "patient_id", "constraint-error"),
    ]
    assert messages(outcomes) == ["to_bed_id is the same as line 2", "patient_id is the same as line 2"]


def test_a_bed_freed_by_one_row_is_not_free_for_another_of_the_same_file() -> None:
    """Rows are checked against the ward before the file: 002 cannot take CARD-01 as 001 leaves it."""
    assert problems(check("001,CARD-03,r,,\n002,CARD-01,r,,\n")) == [(3, "to_bed_id", "bed-not-available")]


def test_the_same_target_bed_in_a_later_chunk_fails_against_its_first_line() -> None:
    stores, run = FakeStores(ward()), start(TRANSFER)
    run.validate(records_of(TRANSFER, HEADER + "001,CARD-03,r,,\n"), stores)
    later = run.validate(records_of(TRANSFER, HEADER + "\n\n002,CARD-03,r,,\n"), stores)
    assert (problems(later), messages(later)) == (
        [(4, "to_bed_id", "bed-not-available")],
        ["to_bed_id is the same as line 2"],
    )


def test_patients_beds_and_last_moves_are_looked_up_once_per_chunk() -> None:
    stores = FakeStores(ward())
    check("001,CARD-03,r,,\n002,SURG-01,r,,\n999,NOPE,r,,\n", stores)
    assert stores.ward.lookups == {"patients_by_mrn": 1, "beds_by_code": 1, "last_transfers": 1}


@pytest.mark.parametrize(
    ("default", "cell", "notifies"), [(False, "", False), (False, "yes", True), (True, "no", False)]
)
def test_a_row_notifies_caregivers_of_the_new_bed_when_its_cell_or_the_setting_says_so(
    default: bool, cell: str, notifies: bool
) -> None:
    stores = FakeStores(ward())
    [transfer] = payloads(check(f"001,SURG-01,r,2026-11-25,{cell}\n", stores, notify=default))
    expected = CareEvent(
        "transfer",
        stores.ward.patients["001"].id,
        "001",
        "SURG",
        "SURG-01",
        datetime(2026, 11, 25, tzinfo=UTC),
    )
    assert transfer.event == (expected if notifies else None)


def test_apply_moves_the_stays_and_returns_a_notification_line_per_caregiver() -> None:
    """The old bed is free and the new one holds the patient; the admission is the same one."""
    stores = FakeStores(ward())
    admission = stores.ward.patients["001"].admission_id
    run = start(TRANSFER)
    outcomes = run.validate(records_of(TRANSFER, HEADER + "001,SURG-01,r,,yes\n002,CARD-03,r,,yes\n"), stores)
    assert stores.ward.writes == []
    lines = run.apply(payloads(outcomes), stores)
    assert [(n.patient_id, n.caregiver_name, n.kind, n.ward, n.bed, n.status) for n in lines] == [
        ("001", "Carl Lee", "transfer", "SURG", "SURG-01", "queued"),
        ("002", "", "transfer", "CARD", "CARD-03", "skipped"),
    ]
    beds, patient = stores.ward.beds, stores.ward.patients["001"]
    assert (beds["CARD-01"].status, beds["SURG-01"].current_patient_id) == ("available", patient.id)
    assert (patient.admission_id, patient.bed_code) == (admission, "SURG-01")


def test_apply_without_notifications_asks_for_none() -> None:
    stores = FakeStores(ward())
    run = start(TRANSFER)
    outcomes = run.validate(records_of(TRANSFER, HEADER + "001,CARD-03,r,,\n"), stores)
    assert run.apply(payloads(outcomes), stores) == [] and stores.ward.notified == []


def test_a_target_bed_taken_since_validation_stops_the_chunk_with_concurrent_change() -> None:
    """The pipeline then rolls the file back and validates it again."""
    stores = FakeStores(ward())
    run = start(TRANSFER)
    outcomes = run.validate(records_of(TRANSFER, HEADER + "001,CARD-03,r,,\n"), stores)
    stores.ward.occupy(stores.ward.patients["003"], stores.ward.beds["CARD-03"], NOW)  # another daemon
    with pytest.raises(ConcurrentChange):
        run.apply(payloads(outcomes), stores)
    assert stores.ward.transferred == []


def test_a_patient_moved_or_discharged_since_validation_stops_the_chunk_with_concurrent_change() -> None:
    stores = FakeStores(ward())
    run = start(TRANSFER)
    outcomes = run.validate(records_of(TRANSFER, HEADER + "001,CARD-03,r,,\n"), stores)
    stores.ward.release(stores.ward.patients["001"])  # discharged by another daemon
    with pytest.raises(ConcurrentChange):
        run.apply(payloads(outcomes), stores)
    assert stores.ward.transferred == []

"""bulk_discharge's rules, on fake stores: which discharges are valid, their payloads, what they write."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from processor.errors import ConcurrentChange
from processor.operations.base import RowOutcome
from processor.operations.bulk_discharge import BulkDischarge
from processor.operations.bulk_discharge.rules import DISCHARGE_STATUSES
from processor.operations.ports import CareEvent
from tests.fakes import NOW, Caregiver, FakeStores, FakeWard, messages, payloads, problems, records_of, start

DISCHARGE = BulkDischarge()
HEADER = "patient_id,discharge_notes,discharge_status,discharge_date,notify\n"
ADMITTED_AT = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def ward() -> FakeWard:
    """001 in CARD-01 and 002 in CARD-02 since ADMITTED_AT, 001 with a caregiver; 003 not admitted."""
    ward = FakeWard()
    ward.add_bed("CARD-01", "CARD")
    ward.add_bed("CARD-02", "CARD")
    ward.add_patient("001", in_bed="CARD-01", since=ADMITTED_AT)
    ward.add_patient("002", in_bed="CARD-02", since=ADMITTED_AT)
    ward.add_patient("003")
    ward.add_caregiver("001", Caregiver("Carl Lee", "carl@example.org"))
    return ward


def check(rows: str, stores: FakeStores | None = None, notify: bool = False) -> list[RowOutcome]:
    """Validate ``rows`` (after the header) as one chunk of a fresh run."""
    stores = stores or FakeStores(ward())
    return start(DISCHARGE, notify).validate(records_of(DISCHARGE, HEADER + rows), stores)


def test_a_valid_row_ends_the_patients_admission_and_frees_its_bed() -> None:
    """Without a date the discharge is now; without a status it is "other" (wardbulk guesses no outcome)."""
    stores = FakeStores(ward())
    outcomes = check("001,Stable,Recovered,2026-11-10T10:00,\n002,,,,\n", stores)
    first, second = payloads(outcomes)
    admitted = stores.ward.patients["001"]
    assert (first.patient_id, first.admission_id, first.bed_id) == (
        admitted.id,
        admitted.admission_id,
        admitted.bed_id,
    )
    assert first[3:] == (datetime(2026, 11, 10, 10, 0, tzinfo=UTC), "recovered", "Stable", None)
    assert second[3:] == (NOW, "other", None, None)


@pytest.mark.parametrize("status", DISCHARGE_STATUSES)
def test_each_discharge_status_is_accepted_in_any_case(status: str) -> None:
    [discharge] = payloads(check(f"001,,{status.upper()},,\n"))
    assert discharge.discharge_status == status


@pytest.mark.parametrize(
    ("row", "expected", "message"),
    [
        ("003,,,,", (2, "patient_id", "not-admitted"), "the patient has no active admission"),
        ("999,,,,", (2, "patient_id", "unknown-patient"), "patient_id is not a known patient"),
        ("01,,,,", (2, "patient_id", "unknown-patient"), "patient_id is not a known patient"),
        (
            "001,,healed,,",
            (2, "discharge_status", "constraint-error"),
            "discharge_status must be one of " + ", ".join(DISCHARGE_STATUSES),
        ),
        (
            "001,,,2026-10-31,",
            (2, "discharge_date", "constraint-error"),
            "discharge_date is before the admission date",
        ),
        ("001,,,2999-10-01,", (2, "discharge_date", "constraint-error"), "discharge_date is in the future"),
        ("001,,,1.11.2026,", (2, "discharge_date", "type-error"), None),
        (",notes,,,", (2, "patient_id", "constraint-error"), "patient_id a value is required"),
    ],
)
def test_a_discharge_that_cannot_be_applied_is_an_error(
    row: str, expected: tuple[int, str, str], message: str | None
) -> None:
    outcomes = check(row + "\n")
    assert problems(outcomes) == [expected] and payloads(outcomes) == []
    if message is not None:
        assert messages(outcomes) == [message]


def test_a_discharge_at_the_admission_instant_is_allowed() -> None:
    """A zero-length stay is odd but possible; only a discharge before the admission is impossible."""
    assert problems(check("001,,,2026-11-01T08:00:00Z,\n")) == []


def test_a_bed_that_does_not_record_its_patient_is_not_discharged() -> None:
    """The registry contradicts the admission: a person corrects it first, wardbulk does not guess."""
    ward_ = ward()
    ward_.patients["001"] = replace(ward_.patients["001"], bed_patient_id=ward_.patients["002"].id)
    outcomes = check("001,,,,\n", FakeStores(ward_))
    assert problems(outcomes) == [(2, "patient_id", "constraint-error")]
    assert messages(outcomes) == ["bed CARD-01 does not record this patient; correct the bed registry first"]


def test_a_patient_twice_in_a_file_fails_the_second_row() -> None:
    outcomes = check("001,,,,\n001,,,,\n")
    assert (problems(outcomes), messages(outcomes)) == (
        [(3, "patient_id", "not-admitted")],
        ["patient_id is the same as line 2"],
    )


def test_patients_are_looked_up_once_per_chunk() -> None:
    stores = FakeStores(ward())
    check("001,,,,\n002,,,,\n999,,,,\n", stores)
    assert stores.ward.lookups == {"patients_by_mrn": 1}


@pytest.mark.parametrize(
    ("default", "cell", "notifies"), [(False, "", False), (False, "y", True), (True, "n", False)]
)
def test_a_row_notifies_caregivers_when_its_cell_or_else_the_setting_says_so(
    default: bool, cell: str, notifies: bool
) -> None:
    stores = FakeStores(ward())
    [discharge] = payloads(check(f"001,,,,{cell}\n", stores, notify=default))
    expected = CareEvent("discharge", stores.ward.patients["001"].id, "001", "CARD", "CARD-01", NOW)
    assert discharge.event == (expected if notifies else None)


def test_apply_discharges_and_returns_the_notification_lines() -> None:
    stores = FakeStores(ward())
    run = start(DISCHARGE, notify=True)
    outcomes = run.validate(records_of(DISCHARGE, HEADER + "001,,,,\n002,,,,no\n"), stores)
    assert stores.ward.writes == []
    lines = run.apply(payloads(outcomes), stores)
    assert [(n.patient_id, n.caregiver_email, n.kind, n.bed, n.status) for n in lines] == [
        ("001", "carl@example.org", "discharge", "CARD-01", "queued")
    ]
    assert stores.ward.discharged == payloads(outcomes)
    assert (
        stores.ward.beds["CARD-01"].status == "available" and stores.ward.patients["001"].admission_id is None
    )


def test_an_admission_ended_since_validation_stops_the_chunk_with_concurrent_change() -> None:
    stores = FakeStores(ward())
    run = start(DISCHARGE)
    outcomes = run.validate(records_of(DISCHARGE, HEADER + "001,,,,\n"), stores)
    stores.ward.release(stores.ward.patients["001"])  # discharged by another daemon meanwhile
    with pytest.raises(ConcurrentChange):
        run.apply(payloads(outcomes), stores)

"""sync_beds' rules, on fake stores: which registry rows are valid, their payloads, what they write."""

from __future__ import annotations

import pytest

from processor.core.operation_types import BedStatus
from processor.operations.base import RowOutcome
from processor.operations.sync_beds import SyncBeds
from processor.operations.sync_beds.ports import BedUpsert
from tests.fakes import FakeStores, FakeWard, messages, payloads, problems, records_of, start

SYNC = SyncBeds()
HEADER = "ward,bed_id,bed_number,ward_name,status\n"


def ward() -> FakeWard:
    """CARD ("Cardiology") with CARD-01 holding patient 001 and CARD-02 available; PAED with PAED-07 in
    maintenance."""
    ward = FakeWard()
    ward.add_ward("CARD", "Cardiology")
    ward.add_bed("CARD-01", "CARD")
    ward.add_bed("CARD-02", "CARD")
    ward.add_bed("PAED-07", "PAED", BedStatus.MAINTENANCE.value)
    ward.add_patient("001", in_bed="CARD-01")
    return ward


def check(rows: str, stores: FakeStores | None = None) -> list[RowOutcome]:
    """Validate ``rows`` (after the header) as one chunk of a fresh run."""
    stores = stores or FakeStores(ward())
    return start(SYNC).validate(records_of(SYNC, HEADER + rows), stores)


def test_a_bed_or_ward_not_in_the_registry_is_created_not_an_error() -> None:
    """Empty cells keep what is there (None): a new bed's number and status are the store's defaults."""
    outcomes = check("ICU,ICU-01,1,Intensive Care,\nICU,ICU-02,,,maintenance\n")
    assert problems(outcomes) == []
    assert payloads(outcomes) == [
        BedUpsert("ICU-01", "ICU", "Intensive Care", "1", None, None),
        BedUpsert("ICU-02", "ICU", None, None, "maintenance", None),
    ]


def test_a_known_bed_is_updated_and_may_move_to_another_ward() -> None:
    stores = FakeStores(ward())
    [upsert] = payloads(check("SURG,CARD-02,2B,,Available\n", stores))
    assert upsert == BedUpsert("CARD-02", "SURG", None, "2B", "available", stores.ward.beds["CARD-02"].id)


@pytest.mark.parametrize("status", ["available", "MAINTENANCE", "Maintenance"])
def test_a_row_may_set_a_bed_available_or_in_maintenance(status: str) -> None:
    [upsert] = payloads(check(f"PAED,PAED-07,,,{status}\n"))
    assert upsert.status == status.lower()


@pytest.mark.parametrize("status", ["occupied", "broken"])
def test_any_other_status_is_an_error_occupied_included(status: str) -> None:
    """A bed becomes occupied only by an admission, never by the registry."""
    outcomes = check(f"PAED,PAED-07,,,{status}\n")
    assert problems(outcomes) == [(2, "status", "constraint-error")]
    assert messages(outcomes) == ["status must be one of available, maintenance"]


@pytest.mark.parametrize("row", ["CARD,CARD-01,,,maintenance", "CARD,CARD-01,,,available", "SURG,CARD-01,,,"])
def test_an_occupied_bed_keeps_its_status_and_its_ward(row: str) -> None:
    outcomes = check(row + "\n")
    assert problems(outcomes) == [(2, "bed_id", "bed-occupied")]
    assert messages(outcomes) == [
        "the bed is occupied: discharge the patient before changing its status or ward"
    ]


def test_an_occupied_bed_may_be_renumbered_and_its_ward_renamed() -> None:
    assert problems(check("CARD,CARD-01,1A,Cardiology East,\n")) == []


def test_a_bed_twice_in_a_file_fails_the_second_row() -> None:
    outcomes = check("CARD,CARD-02,,,\nCARD,CARD-02,,,maintenance\n")
    assert (problems(outcomes), messages(outcomes)) == (
        [(3, "bed_id", "constraint-error")],
        ["bed_id is the same as line 2"],
    )


def test_a_ward_has_one_name_per_file() -> None:
    """The first name given wins the comparison; rows repeating it or giving none agree with it."""
    outcomes = check(
        "ICU,ICU-01,,Intensive,\nICU,ICU-02,,Intensive,\nICU,ICU-03,,,\nICU,ICU-04,,Intensive Care,\n"
    )
    assert (problems(outcomes), messages(outcomes)) == (
        [(5, "ward_name", "constraint-error")],
        ["ward_name differs from the name given for this ward on line 2"],
    )


def test_a_ward_name_given_in_an_earlier_chunk_still_counts() -> None:
    stores, run = FakeStores(ward()), start(SYNC)
    run.validate(records_of(SYNC, HEADER + "ICU,ICU-01,,Intensive,\n"), stores)
    later = run.validate(records_of(SYNC, HEADER + "\nICU,ICU-02,,ICU,\n"), stores)
    assert problems(later) == [(3, "ward_name", "constraint-error")]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (",CARD-02,,,", (2, "ward", "constraint-error")),
        ("CARD,,,,available", (2, "bed_id", "constraint-error")),
        ("CARD,CARD-02," + "9" * 33 + ",,", (2, "bed_number", "constraint-error")),
        ("CARD,CARD-02,,Cardiology" + "y" * 191 + ",", (2, "ward_name", "constraint-error")),
        ("ICU,ICU-" + "0" * 32 + ",,,", (2, "bed_number", "constraint-error")),
        ("CARD," + "B" * 65 + ",1,,", (2, "bed_id", "constraint-error")),
    ],
)
def test_values_the_registry_cannot_hold_are_errors(row: str, expected: tuple[int, str, str]) -> None:
    """A new bed without a number would take its bed_id as number, so that must fit (32 characters)."""
    assert problems(check(row + "\n")) == [expected]


def test_a_known_bed_with_a_long_code_keeps_its_number() -> None:
    ward_ = ward()
    ward_.add_bed("CARD-" + "0" * 32, "CARD")
    assert problems(check("CARD,CARD-" + "0" * 32 + ",,,\n", FakeStores(ward_))) == []


def test_beds_are_looked_up_once_per_chunk_and_wards_not_at_all() -> None:
    """Wards are matched when the rows are applied: a missing one is created then."""
    stores = FakeStores(ward())
    check("CARD,CARD-02,,,\nICU,ICU-01,,,\n,bad,,,\n", stores)
    assert stores.ward.lookups == {"beds_by_code": 1}


def test_apply_upserts_the_valid_rows_and_notifies_nobody() -> None:
    stores = FakeStores(ward())
    run = start(SYNC)
    outcomes = run.validate(
        records_of(SYNC, HEADER + "ICU,ICU-01,1,Intensive Care,\nSURG,CARD-02,,,\n"), stores
    )
    assert stores.ward.writes == []
    assert run.apply(payloads(outcomes), stores) == []
    assert stores.ward.upserted == payloads(outcomes)
    assert (
        stores.ward.wards["ICU"].name == "Intensive Care" and stores.ward.beds["CARD-02"].ward_code == "SURG"
    )

"""import_patients' rules, on fake stores: what makes a row valid, its payload, and what it writes."""

from __future__ import annotations

from datetime import date

import pytest

from processor.operations.base import RowOutcome
from processor.operations.import_patients import ImportPatients
from processor.operations.import_patients.ports import NewPatient
from tests.fakes import (
    NOW,
    OPERATION_ID,
    FakeStores,
    FakeWard,
    messages,
    payloads,
    problems,
    records_of,
    start,
    validated,
)

IMPORT = ImportPatients()
HEADER = "first_name,last_name,email,patient_id,phone,date_of_birth,gender,caregiver_name,caregiver_email,caregiver_phone\n"


def check(rows: str, ward: FakeWard | None = None) -> list[RowOutcome]:
    """Validate ``rows`` (after the full header) as one chunk."""
    return validated(IMPORT, HEADER + rows, FakeStores(ward))


def test_a_valid_row_becomes_a_new_patient_with_normalised_email_and_gender() -> None:
    """The e-mail is lower-cased, the gender upper-cased, cells trimmed; the patient_id is returned."""
    [outcome] = check(" Jane ,Doe,Jane.Doe@Example.ORG,000123,555-0101,1980-05-15,f,,,\n")
    assert outcome.payload == NewPatient(
        "000123", "Jane", "Doe", "jane.doe@example.org", "555-0101", date(1980, 5, 15), "F", None, None, None
    )
    assert outcome.created == {"assigned_patient_id": "000123", "change": "created"}


def test_an_empty_patient_id_gets_one_made_of_the_operation_and_the_line() -> None:
    """Stable: the same file reprocessed under the same operation gets the same identifiers."""
    outcomes = check("Ana,Lee,ana@example.org,,,,,,,\nTom,Ray,tom@example.org,,,,,,,\n")
    assert [o.created["assigned_patient_id"] for o in outcomes] == ["WB-000007-0000002", "WB-000007-0000003"]
    assert [p.mrn for p in payloads(outcomes)] == ["WB-000007-0000002", "WB-000007-0000003"]


@pytest.mark.parametrize(
    ("row", "column", "code"),
    [
        (",Doe,a@example.org,,,,,,,", "first_name", "constraint-error"),
        ("Jane,,a@example.org,,,,,,,", "last_name", "constraint-error"),
        ("Jane,Doe,,,,,,,,", "email", "constraint-error"),
        ("Jane,Doe,not-an-email,,,,,,,", "email", "type-error"),
        ("Jane,Doe,a@b,,,,,,,", "email", "type-error"),
        ("Jane,Doe," + "a" * 250 + "@example.org,,,,,,,", "email", "constraint-error"),
        ("Jane,Doe,a@example.org," + "9" * 65 + ",,,,,,", "patient_id", "constraint-error"),
        ("Jane,Doe,a@example.org,,call me,,,,,", "phone", "type-error"),
        ("Jane,Doe,a@example.org,,,2026-11-27,,,,", "date_of_birth", "constraint-error"),
        ("Jane,Doe,a@example.org,,,15/05/1980,,,,", "date_of_birth", "type-error"),
        ("Jane,Doe,a@example.org,,,,X,,,", "gender", "constraint-error"),
        ("Jane,Doe,a@example.org,,,,,,not-mail,", "caregiver_email", "type-error"),
    ],
)
def test_a_row_breaking_a_field_rule_is_an_error_on_that_column(row: str, column: str, code: str) -> None:
    """The row has no payload and creates no key; the error names the column and carries the cell."""
    [outcome] = check(row + "\n")
    assert problems([outcome]) == [(2, column, code)]
    assert (outcome.payload, outcome.created) == (None, {})


def test_a_birth_date_of_today_is_not_in_the_future() -> None:
    """ "The future" is measured against the run's clock, not the machine's."""
    [outcome] = check(f"Jane,Doe,a@example.org,,,{NOW.date().isoformat()},,,,\n")
    assert outcome.ok


def test_every_broken_field_is_reported_and_the_rules_across_fields_come_after() -> None:
    """Gender, patient_id length and the caregiver's name are checked once the fields themselves pass."""
    outcomes = check(",,bad,,,,X,,,\nA,A,a@example.org,,,,X,,c@example.org,\n")
    assert [(line, column) for line, column, _ in problems(outcomes)] == [
        (2, "first_name"),
        (2, "last_name"),
        (2, "email"),
        (3, "gender"),
        (3, "caregiver_name"),
    ]


def test_a_caregiver_is_kept_with_the_patient_and_needs_a_name() -> None:
    """A caregiver's e-mail or phone without a name is an error; with a name all three are kept."""
    outcomes = check(
        "A,A,a@example.org,,,,,Carl Lee,Carl@Example.org,555-0001\n"
        "B,B,b@example.org,,,,,,c@example.org,\n"
        "C,C,c@example.org,,,,,,,555-0002\n"
    )
    assert payloads(outcomes)[0][-3:] == ("Carl Lee", "carl@example.org", "555-0001")
    assert problems(outcomes) == [
        (3, "caregiver_name", "constraint-error"),
        (4, "caregiver_name", "constraint-error"),
    ]


def test_a_repeated_email_or_patient_id_in_the_file_points_at_the_first_line() -> None:
    """E-mails compare case-insensitively; patient_ids exactly (leading zeros matter)."""
    outcomes = check(
        "A,A,a@example.org,001,,,,,,\nB,B,A@Example.org,002,,,,,,\nC,C,c@example.org,001,,,,,,\nD,D,d@example.org,1,,,,,,\n"
    )
    assert problems(outcomes) == [(3, "email", "duplicate-email"), (4, "patient_id", "duplicate-patient-id")]
    assert messages(outcomes) == ["email is the same as line 2", "patient_id is the same as line 2"]
    assert [p.mrn for p in payloads(outcomes)] == ["001", "1"]


def test_repeats_are_found_across_chunks_of_one_run() -> None:
    """The run remembers the first line of every key, whichever chunk it was in."""
    run, stores = start(IMPORT), FakeStores()
    first = run.validate(records_of(IMPORT, HEADER + "A,A,a@example.org,001,,,,,,\n"), stores)
    second_chunk = records_of(IMPORT, HEADER + "\nB,B,a@example.org,001,,,,,,\n")  # line 3 of the file
    assert first[0].ok
    assert problems(run.validate(second_chunk, stores)) == [
        (3, "email", "duplicate-email"),
        (3, "patient_id", "duplicate-patient-id"),
    ]


def test_a_row_with_errors_does_not_hold_its_email_against_later_rows() -> None:
    """Only a row that will be applied is a "first line"; a later valid row with its e-mail is fine."""
    outcomes = check(",A,a@example.org,001,,,,,,\nB,B,a@example.org,001,,,,,,\n")
    assert [o.ok for o in outcomes] == [False, True]


def test_an_email_or_patient_id_already_in_the_database_is_a_duplicate() -> None:
    ward = FakeWard()
    ward.add_patient("001", email="a@example.org")
    outcomes = check(
        "X,X,x@example.org,009,,,,,,\nB,B,A@example.org,002,,,,,,\nC,C,c@example.org,001,,,,,,\n", ward
    )
    assert problems(outcomes) == [(3, "email", "duplicate-email"), (4, "patient_id", "duplicate-patient-id")]
    assert messages(outcomes) == ["email already belongs to another user", "patient_id already exists"]
    assert [o.created for o in outcomes] == [{"assigned_patient_id": "009", "change": "created"}, {}, {}]


def test_the_database_is_asked_once_per_chunk_and_only_about_valid_rows() -> None:
    ward = FakeWard()
    check("A,A,a@example.org,,,,,,,\nB,B,b@example.org,,,,,,,\nC,C,bad,,,,,,,\n", ward)
    assert ward.lookups == {"existing_emails": 1, "existing_patient_ids": 1}
    nothing_valid = FakeWard()
    check("C,C,bad,,,,,,,\n", nothing_valid)
    assert nothing_valid.lookups == {}


def test_validation_writes_nothing_and_apply_inserts_the_payloads_of_the_run() -> None:
    """Phase 2 inserts exactly the valid rows' payloads, under the run's operation; no notifications."""
    ward = FakeWard()
    stores = FakeStores(ward)
    run = start(IMPORT)
    outcomes = run.validate(
        records_of(IMPORT, HEADER + "A,A,a@example.org,,,,,Carl,,555-0001\nB,B,bad,,,,,,,\n"), stores
    )
    assert ward.writes == []
    assert run.apply(payloads(outcomes), stores) == []
    assert ward.inserted == payloads(outcomes)
    assert ward.emails == {"a@example.org"} and f"WB-{OPERATION_ID:06d}-0000002" in ward.patients
    assert len(ward.caregivers) == 1

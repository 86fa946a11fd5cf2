"""import_patients checks a chunk column by column first (``fast_path``) and sends only the rows it is
not certain of through the row model. The model stays the reference: whatever the fast path accepts, the
model accepts too, with the identical payload; and a clean chunk never needs the model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.core.csv_reading import Record
from processor.core.problems import Code, RowError
from processor.operations.base import RowOutcome, RunContext
from processor.operations.import_patients import rules
from processor.operations.import_patients.fast_path import COLUMNS, certain_patients
from processor.operations.import_patients.rules import ImportPatientsRun, generated_patient_id

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
TODAY = NOW.date()
TOMORROW = (TODAY + timedelta(days=1)).isoformat()

NAMES = ["Jane", " José ", "Zoë", "Nguyễn", "李", "O'Brien", "=cmd", "", "   ", "a" * 150, "a" * 151]
NAMES += [" " + "b" * 150 + " ", "x\u00a0", "\u200b", "é" * 150, "\t", "Jo\udcff", "\ud800"]
EMAILS = ["jane@example.org", "Jane.Doe@Example.ORG", " a@b.co ", "a@b.c", "a@b", "a@@b.co", "a@b.co."]
EMAILS += ["a@-b.co", "", "é@b.co", "İ@b.co", "a@b.co\nx", "a@b.co\n", "x" * 64 + "@" + "b" * 63 + ".com"]
EMAILS += ["a" * 240 + "@example.org", "a" * 242 + "@example.org", "a" * 243 + "@example.org"]
PATIENT_IDS = ["", "000123", " 42 ", "x" * 64, "x" * 65, "WB-000001-0000002", "  ", "ä" * 64, "42\udcff"]
PHONES = ["", "555-0101", "+44 20 7946 0000", "(555) 010 0101", "555 0101 x12", "555-0101 ext. 4"]
PHONES += ["+", "abc", "1" * 32, "1" * 33, "٣٤٥٦", "+1-555-0101", "555.0101", "\uff15\uff15\uff15"]
DATES = ["", "1980-05-15", "2020-02-29", "2021-02-29", "1879-12-31", "1880-01-01", TODAY.isoformat()]
DATES += [
    TOMORROW,
    "\uff11\uff19\uff18\uff10-05-15",
    "1980-5-15",
    "19800515",
    "1980-05-15T00:00",
    "0000-01-01",
    "9999-12-31",
]
DATES += ["2026-13-01", " 1990-01-01 ", "1990-01-01x", "٢٠٠٠-01-01"]
GENDERS = ["", "M", "m", " f ", "o", "U", "x", "male", "ß", "\uff4d", "FF"]
CAREGIVER_NAMES = ["", "Ann Lee", "a" * 300, "a" * 301, " ", "Ann\udcff"]
CAREGIVER_EMAILS = ["", "c@d.org", "bad", "C@D.ORG ", "c" * 243 + "@example.org"]
CAREGIVER_PHONES = ["", "555-0101", "bad", "1" * 33]

_AWKWARD = {
    "first_name": NAMES,
    "last_name": NAMES,
    "email": EMAILS,
    "patient_id": PATIENT_IDS,
    "phone": PHONES,
    "date_of_birth": DATES,
    "gender": GENDERS,
    "caregiver_name": CAREGIVER_NAMES,
    "caregiver_email": CAREGIVER_EMAILS,
    "caregiver_phone": CAREGIVER_PHONES,
}
_GOOD = {
    "first_name": ["Jane", " José ", "李"],
    "last_name": ["Doe", "a" * 150],
    "email": ["jane@example.org", "Jane.Doe@Example.ORG", "a" * 240 + "@example.org"],
    "patient_id": ["", "000123", "x" * 64],
    "phone": ["", "555-0101", "+44 20 7946 0000", "1" * 32],
    "date_of_birth": ["", "1980-05-15", "1880-01-01", TODAY.isoformat()],
    "gender": ["", "m", " F "],
    "caregiver_name": ["", "Ann Lee"],
    "caregiver_email": [""],
    "caregiver_phone": [""],
}


@st.composite
def _row(draw: st.DrawFn) -> dict[str, str]:
    """A valid row with up to two cells replaced by an awkward value or by any text at all: each rule
    is then exercised one or two at a time, where a row full of random cells would hide it behind others."""
    row = {name: draw(st.sampled_from(values)) for name, values in _GOOD.items()}
    if row["caregiver_name"]:
        row["caregiver_email"] = draw(st.sampled_from(["", "ann@example.org"]))
        row["caregiver_phone"] = draw(st.sampled_from(["", "555-0199"]))
    for name in draw(st.lists(st.sampled_from(COLUMNS), max_size=2, unique=True)):
        row[name] = draw(st.one_of(st.sampled_from(_AWKWARD[name]), st.text(max_size=40)))
    for name in draw(st.lists(st.sampled_from(COLUMNS), max_size=2, unique=True)):
        del row[name]  # a record without the cell: the rows of one chunk need not hold the same ones
    return row


def _run() -> ImportPatientsRun:
    return ImportPatientsRun(RunContext(operation_id=7, now=NOW))


def _records(rows: list[dict[str, str]]) -> list[Record]:
    return [Record(line, dict(row), list(row.values())) for line, row in enumerate(rows, start=2)]


def _mrn(line: int) -> str:
    return generated_patient_id(7, line)


def _model_outcome(record: Record) -> RowOutcome:
    return _run()._validate_one(record)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_row(), min_size=1, max_size=12))
def test_a_row_the_fast_path_accepts_the_model_accepts_with_the_same_patient(
    rows: list[dict[str, str]],
) -> None:
    records = _records(rows)
    for record, patient in zip(records, certain_patients(records, TODAY, _mrn), strict=True):
        if patient is None:
            continue
        outcome = _model_outcome(record)
        assert outcome.errors == [], f"line {record.line}: the model rejects what the fast path accepted"
        assert outcome.payload == patient


def _clean_row(number: int) -> dict[str, str]:
    return {
        "first_name": ["Jane", "José", "Nguyễn"][number % 3],
        "last_name": "Doe",
        "email": f"Patient.{number}@Example.org",
        "patient_id": f"{number:09d}" if number % 4 else "",
        "phone": ["555-0101", "+44 20 7946 0000", "", "(555) 010 0101 x12"][number % 4],
        "date_of_birth": ["1980-05-15", "", TODAY.isoformat()][number % 3],
        "gender": ["F", "m", "", "U"][number % 4],
        "caregiver_name": "Ann Lee" if number % 3 == 0 else "",
        "caregiver_email": "ann@example.org" if number % 3 == 0 else "",
        "caregiver_phone": "555-0199" if number % 6 == 0 else "",
    }


def test_a_clean_chunk_is_accepted_whole_without_the_row_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*_: object, **__: object) -> None:
        raise AssertionError("a clean row went through the row model")

    monkeypatch.setattr(rules, "_validate_row", no_model)
    records = _records([_clean_row(number) for number in range(500)])
    outcomes = _run().validate(records, _NoLookups())
    assert [outcome.errors for outcome in outcomes] == [[]] * 500
    assert outcomes[0].payload.email == "patient.0@example.org"
    assert outcomes[0].created == {"assigned_patient_id": _mrn(2), "change": "created"}


def test_only_the_doubtful_rows_go_through_the_row_model_which_reports_them() -> None:
    rows = [_clean_row(number) for number in range(6)]
    rows[2]["email"] = "not an address"
    rows[4]["date_of_birth"] = TOMORROW
    records = _records(rows)
    assert [patient is None for patient in certain_patients(records, TODAY, _mrn)] == [
        False,
        False,
        True,
        False,
        True,
        False,
    ]
    outcomes = _run().validate(records, _NoLookups())
    assert [(error.column, error.code) for o in outcomes for error in o.errors] == [
        ("email", Code.TYPE_ERROR),
        ("date_of_birth", Code.CONSTRAINT_ERROR),
    ]


def test_a_record_with_reading_errors_is_never_accepted() -> None:
    records = _records([_clean_row(1)])
    records[0].errors.append(
        RowError(2, "phone", Code.CONTROL_CHARACTER, "the cell contains a control character")
    )
    assert certain_patients(records, TODAY, _mrn) == [None]


def test_an_absent_optional_column_is_empty_cells() -> None:
    rows = [
        {name: value for name, value in _clean_row(4).items() if name in ("first_name", "last_name", "email")}
    ]
    [patient] = certain_patients(_records(rows), TODAY, _mrn)
    assert patient is not None
    assert (patient.mrn, patient.phone, patient.date_of_birth, patient.gender) == (_mrn(2), None, None, None)
    assert set(COLUMNS) >= set(rows[0])


def test_a_birth_date_today_is_accepted_and_tomorrow_is_doubtful() -> None:
    rows = [_clean_row(3), _clean_row(3)]
    rows[0]["date_of_birth"], rows[1]["date_of_birth"] = TODAY.isoformat(), TOMORROW
    first, second = certain_patients(_records(rows), TODAY, _mrn)
    assert first is not None and first.date_of_birth == date.fromisoformat(TODAY.isoformat())
    assert second is None


class _NoLookups:
    """A database that knows no patient and no e-mail."""

    def existing_emails(self, emails: object) -> set[str]:
        return set()

    def existing_patient_ids(self, ids: object) -> set[str]:
        return set()

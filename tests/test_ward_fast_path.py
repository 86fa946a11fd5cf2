"""The ward operations check a chunk column by column first (``ward_checks.parse_rows``) and send only the
rows they are not certain of through the row model. The model stays the reference: a row the fast path
accepts, the model accepts too, with the identical values; a row it does not accept gets exactly the
model's answer; and a clean chunk never needs the model."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from processor.core.csv_reading import Record
from processor.core.problems import Code, RowError
from processor.operations import ward_checks
from processor.operations.base import RowOutcome, RunContext
from processor.operations.bulk_assignment import BulkAssignment
from processor.operations.bulk_assignment import rules as assignment
from processor.operations.bulk_discharge import BulkDischarge
from processor.operations.bulk_discharge import rules as discharge
from processor.operations.sync_beds import SyncBeds
from processor.operations.sync_beds import rules as sync_beds
from processor.operations.transfer_patients import TransferPatients
from processor.operations.transfer_patients import rules as transfer
from processor.operations.ward_checks import RowForm, parse_row, parse_rows
from tests.fakes import FakeStores, FakeWard

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")

CODES = ["001", " 001 ", "\t001\n", "", "  ", "a" * 64, "a" * 65, " " + "b" * 64 + " ", "é" * 64, "é" * 65]
CODES += ["😀" * 64, "😀" * 65, "٣٤٥", "\u00a0x\u00a0", "\u200bx", "x\udcff", "=cmd", "CARD-01", "card-01"]
TEXTS = ["Emergency", "", " ", "r" * 200, "r" * 201, " " + "r" * 200 + " ", "ä" * 200, "ä" * 201, "\udcff"]
LONG_TEXTS = ["", "Chest pain", "c" * 4000, "c" * 4001, " " + "c" * 4000 + "\n", "\ud800", "\x00"]
MOMENTS = ["", "2025-01-01", "2025-01-01T10:00", "2025-01-01 10:00:00", "2025-01-01T10:00:00.123456"]
MOMENTS += ["2025-01-01T10:00:00.1234567", "2025-02-30", "2025-13-01", "1899-12-31", "1900-01-01"]
MOMENTS += ["1900-01-01T00:30+01:00", "2025-01-01T10:00Z", "2025-01-01T10:00+0530", "2025-01-01T10:00-05:00"]
MOMENTS += ["2027-01-01", NOW.isoformat(), "2026-12-03T09:30:00.000001Z", "2026-12-03T04:30", "٢٠٢٥-01-01"]
MOMENTS += ["2025-01-01T24:00", "2025-03-09T02:30", "2025-11-02T01:30", "2025-01-01T10:00:60", " 2025-01-01 "]
MOMENTS += ["2025-01-01Z", "2025-01-01T10", "20250101", "2025-01-01T10:00:00+14:00", "0001-01-01"]
FLAGS = [
    "",
    "yes",
    "YES",
    " y ",
    "n",
    "1",
    "0",
    "true",
    "False",
    "maybe",
    "2",
    "\uff59\uff45\uff53",
    "İ",
    "\udcff",
]
STATUSES = ["", "recovered", "RECOVERED", " Other ", "deceased", "dead", "transferred", "ǅ", "other\x00"]
STATUSES += ["against_medical_advice", "Against_Medical_Advice", "\udcff"]
BED_STATUSES = [
    "",
    "available",
    "Maintenance",
    " AVAILABLE ",
    "occupied",
    "broken",
    "\udcff",
    "maintenance\x00",
]
# sync_beds' free texts have no limit in the row model (the operation checks what the registry holds).
FREE_TEXTS = ["", "12", " 12 ", "n" * 33, "Cardiology", "x" * 5000, "\ud800", "\x00"]

POOLS = {
    "patient_id": CODES,
    "bed_id": CODES,
    "reason": TEXTS,
    "chief_complaint": LONG_TEXTS,
    "admission_date": MOMENTS,
    "notify": FLAGS,
    "discharge_notes": LONG_TEXTS,
    "discharge_status": STATUSES,
    "discharge_date": MOMENTS,
    "to_bed_id": CODES,
    "transfer_date": MOMENTS,
    "ward": CODES,
    "bed_number": FREE_TEXTS,
    "ward_name": FREE_TEXTS,
    "status": BED_STATUSES,
}
FORMS = {
    "bulk_assignment": assignment.FORM,
    "bulk_discharge": discharge.FORM,
    "transfer_patients": transfer.FORM,
    "sync_beds": sync_beds.FORM,
}
ABSENT = None  # a pool draw meaning "the record has no such cell" (a column the file lacks, a short row)
READING_ERROR = RowError(2, "", Code.EXTRA_CELL, "the row has more cells than the header")


def context(zone: tzinfo = UTC) -> RunContext:
    return RunContext(1, NOW, zone=zone)


def record_of(line: int, cells: dict[str, str | None], errors: bool = False) -> Record:
    present = {name: value for name, value in cells.items() if value is not ABSENT}
    return Record(line, present, list(present.values()), [READING_ERROR] if errors else [])


def values_of(row: Any, model: type[BaseModel]) -> list[Any]:
    return [getattr(row, name) for name in model.model_fields]


def assert_identical(fast: list[Any], reference: list[Any]) -> None:
    """Equal values of the same types; moments with the same offset, as they would be written."""
    assert [type(value) for value in fast] == [type(value) for value in reference]
    assert fast == reference
    for mine, theirs in zip(fast, reference, strict=True):
        if isinstance(mine, datetime):
            assert (mine.isoformat(), mine.tzinfo) == (theirs.isoformat(), theirs.tzinfo)


def assert_as_the_model_says(form: RowForm, records: list[Record], run: RunContext) -> None:
    """Every record gets what the model alone gives it; rows the fast path took are the model's values."""
    for record, row in parse_rows(form, records, run):
        reference = parse_row(form.model, record, run)
        if isinstance(row, form.fields):
            assert isinstance(reference, form.model), (record.line, reference)
            assert_identical(values_of(row, form.model), values_of(reference, form.model))
        else:
            assert row == reference


def cells_strategy(form: RowForm) -> st.SearchStrategy[dict[str, str | None]]:
    columns = form.fields._fields
    return st.fixed_dictionaries(
        {
            name: st.one_of(st.sampled_from(POOLS[name]), st.just(ABSENT), st.text(max_size=8))
            for name in columns
        }
    )


@pytest.mark.parametrize("operation", sorted(FORMS))
@pytest.mark.parametrize("zone", [UTC, NEW_YORK], ids=["utc", "new-york"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_path_never_disagrees_with_the_row_model(
    operation: str, zone: tzinfo, data: st.DataObject
) -> None:
    form = FORMS[operation]
    rows = data.draw(st.lists(st.tuples(cells_strategy(form), st.booleans()), min_size=1, max_size=30))
    records = [
        record_of(line, cells, errors and line % 3 == 0) for line, (cells, errors) in enumerate(rows, 2)
    ]
    assert_as_the_model_says(form, records, context(zone))


@pytest.mark.parametrize("operation", sorted(FORMS))
@pytest.mark.parametrize("zone", [UTC, NEW_YORK], ids=["utc", "new-york"])
def test_every_awkward_cell_gets_the_model_s_answer(operation: str, zone: tzinfo) -> None:
    """Each adversarial value of each column, in an otherwise valid row, one chunk of them all."""
    form = FORMS[operation]
    valid = {name: POOLS[name][0] for name in form.fields._fields} | {
        "patient_id": "001",
        "bed_id": "CARD-01",
        "to_bed_id": "CARD-02",
        "ward": "CARD",
    }
    records = [
        record_of(line, valid | {name: value})
        for line, (name, value) in enumerate(((n, v) for n in form.fields._fields for v in POOLS[n]), 2)
    ]
    assert_as_the_model_says(form, records, context(zone))


def test_a_moment_the_model_cannot_convert_is_left_to_the_model() -> None:
    """9999-12-31T23:00 in New York is past the last datetime in UTC: the model raises what it raises
    (not a row error), and the fast path does not hide that by accepting or refusing the row itself."""
    cells = {"patient_id": "001", "bed_id": "CARD-01", "reason": "r", "admission_date": "9999-12-31T23:00"}
    with pytest.raises(OverflowError):
        parse_row(assignment.AssignmentRow, record_of(2, cells), context(NEW_YORK))
    with pytest.raises(OverflowError):
        parse_rows(assignment.FORM, [record_of(2, cells)], context(NEW_YORK))


@pytest.mark.parametrize("operation", sorted(FORMS))
def test_a_clean_chunk_takes_the_fast_path_only(operation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No row of a clean chunk goes through the model: if the fast path stopped being used, this fails."""
    form = FORMS[operation]
    valid = {
        "patient_id": " 000123 ",
        "bed_id": "CARD-01",
        "reason": "Planned",
        "chief_complaint": "",
        "admission_date": "2026-11-20T08:30:00+01:00",
        "notify": "yes",
        "discharge_notes": "Home",
        "discharge_status": "Recovered",
        "discharge_date": "2026-12-01",
        "to_bed_id": "CARD-02",
        "transfer_date": "2026-12-02T10:00Z",
        "ward": "CARD",
        "bed_number": "7",
        "ward_name": "Cardiology",
        "status": "Available",
    }
    records = [record_of(line, {name: valid[name] for name in form.fields._fields}) for line in range(2, 502)]

    def no_model(*_args: object) -> object:
        raise AssertionError("a clean row went through the row model")

    monkeypatch.setattr(ward_checks, "parse_row", no_model)
    parsed = parse_rows(form, records, context())
    assert all(isinstance(row, form.fields) for _, row in parsed)
    assert [record for record, _ in parsed] == records


def test_the_fast_rows_mirror_the_row_models() -> None:
    """A RowForm whose fields are not the model's, in its order, is refused when it is built."""
    for form in FORMS.values():
        assert form.fields._fields == tuple(form.model.model_fields)
    with pytest.raises(TypeError):
        RowForm(assignment.AssignmentRow, discharge.DischargeCells, discharge.FORM.checks)


# --- whole chunks: the operations' outcomes are those of the model alone ---


def ward() -> FakeWard:
    ward = FakeWard()
    for code in ("CARD-01", "CARD-02", "CARD-03", "CARD-04"):
        ward.add_bed(code, "CARD")
    ward.add_bed("PAED-07", "PAED", "maintenance")
    for mrn in ("001", "002", "003", "005"):
        ward.add_patient(mrn)
    ward.add_patient("004", in_bed="CARD-03")
    ward.add_patient("006", in_bed="CARD-04")
    return ward


def model_only(form: RowForm, records: list[Record], run: RunContext) -> list[tuple[Record, Any]]:
    return [(record, parse_row(form.model, record, run)) for record in records]


def summary(outcomes: list[RowOutcome]) -> list[tuple[int, list[RowError], Any]]:
    return [(o.line, o.errors, o.payload) for o in outcomes]


MOVEMENT_CELLS = {
    "patient_id": ["001", "002", "003", "004", "005", "006", "999", " 001", "", "x" * 65],
    "bed_id": ["CARD-01", "CARD-02", "CARD-03", "PAED-07", "NOPE", " CARD-01 ", ""],
    "reason": ["r", "", "r" * 201],
    "chief_complaint": ["", "c"],
    "admission_date": ["", "2026-11-20T08:30", "2026-01-01", "2027-01-01", "bad"],
    "notify": ["", "yes", "no", "maybe"],
    "discharge_notes": ["", "home"],
    "discharge_status": ["", "deceased", "DEAD"],
    "discharge_date": ["", "2026-12-01", "1990-01-01", "2027-01-01"],
    "to_bed_id": ["CARD-01", "CARD-02", "CARD-03", "PAED-07", "NOPE", ""],
    "transfer_date": ["", "2026-12-01", "1990-01-01", "2027-01-01"],
    "ward": ["CARD", "PAED", "NEW", " CARD ", ""],
    "bed_number": ["", "1", "n" * 33],
    "ward_name": ["", "Cardiology", "Heart", "w" * 201],
    "status": ["", "available", "MAINTENANCE", "occupied"],
}
ROOMS = {"bulk_assignment": assignment, "bulk_discharge": discharge}
ROOMS |= {"transfer_patients": transfer, "sync_beds": sync_beds}


@pytest.mark.parametrize("notify", [False, True])
@pytest.mark.parametrize(
    "operation",
    [BulkAssignment(), BulkDischarge(), TransferPatients(), SyncBeds()],
    ids=lambda op: op.operation_type,
)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_chunk_s_outcomes_are_the_model_s(operation: Any, notify: bool, data: st.DataObject) -> None:
    """Line numbers, codes, messages, "same as line N" and payloads, whichever path each row took."""
    room = ROOMS[operation.operation_type]
    columns = room.FORM.fields._fields
    rows = data.draw(
        st.lists(st.fixed_dictionaries({n: st.sampled_from(MOVEMENT_CELLS[n]) for n in columns}), max_size=12)
    )
    records = [record_of(line, cells) for line, cells in enumerate(rows, 2)]
    run_context = RunContext(1, NOW, notify)
    fast = operation.start(run_context).validate(records, FakeStores(ward()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(room, "parse_rows", model_only)
        reference = operation.start(run_context).validate(records, FakeStores(ward()))
    assert summary(fast) == summary(reference)

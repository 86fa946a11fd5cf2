"""Excel safety keeps what a spreadsheet would run from running, and nothing else: a plain phone number
or signed number keeps its value, and the notifications CSV, read by machines, is not neutralised."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.core.excel_safe import neutralise, neutralised_row, neutralised_rows
from tests.conftest import Workspace


@pytest.mark.parametrize(
    "cell",
    ["+44 20 7946 0000", "+1 (555) 010 0101", "+(44) 20 7946 0000", "-12.5", "+3", "-0.5", "+447946000000"],
)
def test_a_plain_phone_number_or_signed_number_is_left_as_it_is(cell: str) -> None:
    assert neutralise(cell) == cell
    assert neutralised_row([cell, 1]) == [cell, 1]


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        "+SUM(A1:A9)",
        "-2+3*cmd|' /C calc'!A0",
        "@SUM(1)",
        "=HYPERLINK(1)",
        "+",
        "-",
        "-1e5",
        "\t1",
        "+1-555-0101",  # Excel would subtract
        "-1/2",
        "-1.2.3",
        "+\u0661\u0662",  # non-ASCII digits
        "+44 20 ",
    ],
)
def test_what_a_spreadsheet_would_run_is_still_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


# Cells a result row holds: text that may start like a formula, phone and signed numbers, the line
# number, empty cells, None, and NULs (the column scan's separator).
_CELLS = st.one_of(
    st.text(alphabet="=+-@\t\r\n\x00 019()aZ./", max_size=6),
    st.sampled_from(["+44 20 7946 0000", "-12.5", "=1+1", "+1-555-0101", "", "ok", "\x00=1"]),
    st.integers(min_value=-3, max_value=3),
    st.none(),
)


@given(st.lists(st.lists(_CELLS, min_size=3, max_size=3), max_size=8))
def test_a_chunk_checked_column_by_column_is_what_row_by_row_gives(rows: list[list[object]]) -> None:
    originals = [list(row) for row in rows]
    assert [list(row) for row in neutralised_rows(rows)] == [neutralised_row(row) for row in rows]
    assert rows == originals  # the caller's rows are not changed


@given(st.lists(st.lists(_CELLS, max_size=4), max_size=8))
def test_a_ragged_chunk_is_checked_as_each_row_would_be(rows: list[list[object]]) -> None:
    assert [list(row) for row in neutralised_rows(rows)] == [neutralised_row(row) for row in rows]


def test_phone_numbers_reach_result_csv_plain_and_notifications_csv_is_plain_for_machines(
    workspace: Workspace,
) -> None:
    """The messaging system reads notifications.csv: no apostrophe before a phone number there, even for
    a caregiver whose name starts like a formula (the database and the machines get the raw value)."""
    workspace.drop(
        "import_patients",
        "p.csv",
        "first_name,last_name,email,patient_id,phone,caregiver_name,caregiver_phone\n"
        "Ana,Lee,ana@example.org,001,+44 20 7946 0000,=Carer,+44 20 7946 0001\n",
    )
    workspace.run_once()
    result = workspace.output("import_patients", "p", 1, "result.csv").read_text(encoding="utf-8-sig")
    assert ",+44 20 7946 0000," in result and ",'=Carer," in result
    workspace.drop("bulk_assignment", "a.csv", "patient_id,bed_id,reason,notify\n001,CARD-01,r,yes\n")
    workspace.run_once()
    [notifications] = (workspace.outbox / "notifications").glob("a.op*.notifications.csv")
    text = notifications.read_text(encoding="utf-8-sig")
    assert ",=Carer,,+44 20 7946 0001,admission," in text and "'" not in text

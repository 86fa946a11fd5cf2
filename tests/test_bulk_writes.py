"""Specification of the fast paths under the operations: bulk writes, the on-disk first-line index, the
one-scan formula check and the garbage-collector setting of a file's run.

Each fast path must do exactly what the slow, obvious code did; these tests pin that down on both
databases. Their speed is measured by the benchmark suite (bench/), not here.
"""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Integer, insert, select, update
from sqlalchemy.exc import IntegrityError

from processor.adapters.database.bulk import insert_rows, is_among, reserve_ids, values_table
from processor.adapters.database.models import Patient, User, Ward, WardBed
from processor.adapters.first_lines import DiskFirstLineIndex
from processor.core.excel_safe import neutralise, neutralised_row
from processor.operations.base import MemoryFirstLineIndex
from processor.pipeline.runtime import collector_spares_the_heap

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def _users(connection, count, start=0):
    ids = reserve_ids(connection, User, count)
    insert_rows(
        connection,
        User,
        ("id", "username", "email", "first_name", "last_name"),
        [(i, f"u{start + n}", f"u{start + n}@x.org", "Ann", "Lee") for n, i in enumerate(ids)],
        shared={"is_active": True, "created_at": NOW},
    )
    return ids


def test_reserved_keys_are_fresh_and_later_ordinary_inserts_do_not_collide(database):
    """Keys reserved for a chunk are new; an ordinary insert afterwards still gets a free key."""
    with database.engine.begin() as connection:
        first = _users(connection, 3)
        second = _users(connection, 2, start=3)
        connection.execute(insert(User).values(username="later", first_name="", last_name="", created_at=NOW))
        keys = connection.execute(select(User.id).order_by(User.id)).scalars().all()
    assert len(set(first + second)) == 5
    assert len(keys) == len(set(keys)) == 6


def test_inserted_rows_read_back_exactly_as_written_with_shared_values_converted(database):
    """Tuples and shared values arrive as a Core insert would store them: dates, UTC times, booleans."""
    with database.engine.begin() as connection:
        (user_id,) = _users(connection, 1)
        (patient_id,) = reserve_ids(connection, Patient, 1)
        insert_rows(
            connection,
            Patient,
            ("id", "user_id", "mrn", "phone", "date_of_birth", "gender"),
            [(patient_id, user_id, "000123", None, date(1980, 5, 15), "F")],
            shared={"created_at": NOW, "bulk_operation_id": None},
        )
        patient = connection.execute(select(Patient)).one()
        user = connection.execute(select(User)).one()
    assert (patient.mrn, patient.date_of_birth, patient.gender, patient.created_at) == (
        "000123",
        date(1980, 5, 15),
        "F",
        NOW,
    )
    assert (user.is_active, user.created_at, user.email) == (True, NOW, "u0@x.org")


def test_a_constraint_violation_is_sqlalchemys_integrity_error_without_values(database):
    """A duplicate e-mail raises IntegrityError on both databases; SQLAlchemy adds no parameters to it
    (the driver's own message may name the value: the pipeline logs only the error's type)."""
    with database.engine.connect() as connection, connection.begin():
        _users(connection, 1)
        with pytest.raises(IntegrityError) as raised:
            _users(connection, 1)  # the same e-mail u0@x.org again
    what_sqlalchemy_adds = str(raised.value).split("[SQL:")[1]
    assert "u0@x.org" not in what_sqlalchemy_adds


def test_an_empty_chunk_inserts_nothing(database):
    """No rows: no statement, no error."""
    with database.engine.begin() as connection:
        insert_rows(connection, User, ("id", "username"), [], shared={"created_at": NOW})
        assert connection.execute(select(User.id)).all() == []


def test_is_among_matches_exactly_the_given_values_however_many(database):
    """One parameter holds thousands of values; matching is exact (leading zeros, case)."""
    with database.engine.begin() as connection:
        _users(connection, 5)
        wanted = [f"u{n}" for n in (0, 2, 4)] + [f"nobody{n}" for n in range(5000)] + ["U1"]
        found = connection.execute(select(User.username).where(is_among(connection, User.username, wanted)))
        assert sorted(found.scalars()) == ["u0", "u2", "u4"]


def test_an_update_from_a_values_table_changes_only_the_rows_its_condition_allows(database):
    """UPDATE … FROM values_table pairs each bed with its patient and counts the rows it changed."""
    with database.engine.begin() as connection:
        connection.execute(insert(Ward).values(id=1, code="W", name="W", created_at=NOW))
        connection.execute(
            insert(WardBed),
            [
                {"id": n, "code": f"B{n}", "ward_id": 1, "bed_number": str(n), "status": s, "updated_at": NOW}
                for n, s in ((1, "available"), (2, "maintenance"), (3, "available"))
            ],
        )
        (user_id, second_user) = _users(connection, 2)
        connection.execute(
            insert(Patient),
            [
                {"id": 7, "user_id": user_id, "mrn": "7", "created_at": NOW},
                {"id": 8, "user_id": second_user, "mrn": "8", "created_at": NOW},
            ],
        )
        chunk = values_table(connection, {"bed": Integer(), "patient": Integer()}, [(1, 7), (2, 8)])
        statement = (
            update(WardBed)
            .where(WardBed.id == chunk.c.bed, WardBed.status == "available")
            .values(status="occupied", current_patient_id=chunk.c.patient, updated_at=NOW)
        )
        changed = connection.execute(statement).rowcount
        beds = connection.execute(select(WardBed.id, WardBed.status, WardBed.current_patient_id)).all()
    assert changed == 1
    assert sorted(beds) == [(1, "occupied", 7), (2, "maintenance", None), (3, "available", None)]


# Keys as they may reach the index: e-mails differing in case, identifiers, and text SQLite or JSON
# could treat specially (a NUL, quotes, non-ASCII, astral characters).
KEYS = ["a@x.org", "b@x.org", "c@x.org", "A@x.org", "000123", "123", "a\x00b", "a\x00c", "a", '"', "é", "😀"]
KEYED_LINES = st.lists(st.lists(st.sampled_from(KEYS), max_size=8), max_size=6)


@given(chunks=KEYED_LINES)
def test_the_disk_index_answers_as_the_dictionary_does(chunks):
    """Chunk after chunk, the on-disk index names the same first lines as the in-memory one."""
    line = 1
    with DiskFirstLineIndex() as disk:
        memory = MemoryFirstLineIndex()
        for keys in chunks:
            keyed = [(key, line + offset) for offset, key in enumerate(keys)]
            line += len(keys)
            assert disk.claim("email", keyed) == memory.claim("email", keyed)


def test_a_repeat_found_by_lookup_is_named_in_any_chunk_size():
    """More keys in one claim than one lookup query takes: every repeat still names its first line."""
    keys = [f"k{number}" for number in range(1_200)]
    with DiskFirstLineIndex() as index:
        assert index.claim("email", [(key, line) for line, key in enumerate(keys, 2)]) == [None] * 1_200
        again = index.claim("email", [(key, line) for line, key in enumerate(keys, 2_000)])
    assert again == list(range(2, 1_202))


def test_the_index_keeps_each_kind_of_key_apart_and_names_the_first_line():
    """An e-mail and a patient_id with the same text do not clash; a repeat names the first line."""
    with DiskFirstLineIndex() as index:
        assert index.claim("email", [("x", 2), ("y", 3)]) == [None, None]
        assert index.claim("patient_id", [("x", 4)]) == [None]
        assert index.claim("email", [("y", 5), ("z", 6), ("z", 7)]) == [3, None, 6]


CELLS = st.lists(
    st.one_of(st.text(alphabet=st.sampled_from("=+-@\t\r\n\x00a1 ,'"), max_size=4), st.integers(), st.none()),
    max_size=6,
)


@given(cells=CELLS)
def test_one_scan_per_row_neutralises_exactly_the_cells_the_per_cell_rule_does(cells):
    """neutralised_row equals neutralising every text cell on its own (NUL in a cell included)."""
    expected = [neutralise(cell) if isinstance(cell, str) else cell for cell in cells]
    assert neutralised_row(cells) == expected


def test_after_a_file_the_collector_is_as_it_was():
    """The file's run freezes the heap and raises the young threshold; both are restored afterwards."""
    before = gc.get_threshold()
    with collector_spares_the_heap():
        assert gc.get_threshold()[0] > before[0]
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0

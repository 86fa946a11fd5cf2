"""Database errors are translated at the adapter's edge into the project's tree (httpx style), and the
pipeline's one table decides from those types what becomes of a file."""

from __future__ import annotations

import errno

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from processor.adapters.database import operation_records as records
from processor.adapters.database.engine import build_engine
from processor.adapters.database.operation_records import OwnershipLost
from processor.adapters.database.unit_of_work import ReadOnlyUnitOfWork, UnitOfWork
from processor.core.problems import Code, FileRejected
from processor.errors import (
    ConcurrentChange,
    DatabaseConflict,
    DatabaseRefused,
    DatabaseUnavailable,
    WardbulkError,
)
from processor.pipeline import Interrupted
from processor.pipeline.faults import Disposition, disposition_of, is_host_fault
from tests.conftest import Database

UNREACHABLE = "postgresql://wardbulk:secret@127.0.0.1:1/wardbulk"


def test_a_conflicting_insert_in_a_unit_of_work_leaves_as_a_database_conflict(database: Database) -> None:
    """The unit of work translates what its block raised; SQLAlchemy's error stays the cause."""
    with pytest.raises(DatabaseConflict) as raised, UnitOfWork(database.engine) as uow:
        for _ in range(2):
            uow.connection.execute(
                text("INSERT INTO wards (code, name, created_at) VALUES ('W1', 'One', CURRENT_TIMESTAMP)")
            )
    assert isinstance(raised.value.__cause__, IntegrityError)


def test_a_statement_the_database_rejects_is_refused_and_is_not_a_deliberate_error(
    database: Database,
) -> None:
    """A statement given the wrong number of parameters is a defect: DatabaseRefused, which the CLI does
    not print as a one-liner. (SQLite reports a syntax error as an OperationalError, so it cannot stand
    in here: on SQLite a syntax error is judged transient.)"""
    placeholder = "?" if database.backend == "sqlite" else "%s"
    with pytest.raises(DatabaseRefused) as raised, ReadOnlyUnitOfWork(database.engine) as lookups:
        lookups.connection.exec_driver_sql(f"SELECT {placeholder}", (1, 2))
    assert not isinstance(raised.value, WardbulkError)


def test_operation_records_on_an_unreachable_database_raise_database_unavailable() -> None:
    """Every function that opens its own transaction translates; the URL's password is masked."""
    engine = build_engine(UNREACHABLE)
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            records.unfinished_operations(engine)
    finally:
        engine.dispose()
    assert isinstance(raised.value.__cause__, OperationalError)
    assert "secret" not in str(raised.value) and "***" in str(raised.value)
    assert raised.value.exit_code == 3


@pytest.mark.parametrize(
    ("raised", "disposition"),
    [
        (FileRejected.single(Code.EMPTY_FILE, "empty"), Disposition.REJECT),
        (Interrupted(), Disposition.STOP),
        (OwnershipLost(), Disposition.LOST),
        (DatabaseUnavailable("locked"), Disposition.RETRY),
        (DatabaseConflict("key taken"), Disposition.RETRY),
        (ConcurrentChange(), Disposition.RETRY),
        (DatabaseRefused("bad value"), Disposition.REFUSED),
        (OSError(errno.ENOSPC, "full"), Disposition.WAIT),
        (OSError(errno.ENAMETOOLONG, "long"), Disposition.CRASH),
        (KeyError("bug"), Disposition.CRASH),
        (IntegrityError("INSERT", {}, Exception("dup")), Disposition.RETRY),  # an untranslated one
    ],
)
def test_the_one_table_decides_what_becomes_of_a_file(
    raised: BaseException, disposition: Disposition
) -> None:
    assert disposition_of(raised) is disposition


def test_only_the_hosts_troubles_are_waited_for() -> None:
    """The database unavailable or a disk full: the file waits; a conflict or a defect does not."""
    assert is_host_fault(DatabaseUnavailable("gone"))
    assert is_host_fault(OSError(errno.EROFS, "read-only"))
    assert not is_host_fault(DatabaseConflict("key"))
    assert not is_host_fault(DatabaseRefused("value"))
    assert not is_host_fault(ValueError("bug"))

"""``python -m bench.write_ceiling DATABASE_URL FILE``: the schema's own write ceiling (issue 16), timed by
the caller as a whole process.

The same rows an import_patients file of ``FILE`` makes (a user, a patient and, when named, a caregiver
per row), written into the same migrated schema (``wardbulk init`` beforehand, untimed), in one
transaction, with wardbulk's own engine (the same SQLite pragmas: WAL, ``synchronous=FULL``, foreign
keys; the same PostgreSQL server settings), in chunks of wardbulk's default size:

- SQLite: the driver's plain ``executemany`` per table and chunk, keys reserved up front as wardbulk
  does;
- PostgreSQL: ``COPY ... FROM STDIN (FORMAT BINARY)`` per table and chunk.

Only what the constraints need is done to the values (e-mails lower-cased, the gender upper-cased or
none, dates parsed, empty cells none): no checks, no result or error files. Whatever wardbulk does beyond
this is the cost of its row path. Prints the number of patients written.
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from processor.adapters.database.engine import build_engine

CHUNK = 5000
USER_COLUMNS = ("id", "username", "email", "first_name", "last_name", "is_active", "created_at")
PATIENT_COLUMNS = ("id", "user_id", "mrn", "phone", "date_of_birth", "gender", "created_at")
CAREGIVER_COLUMNS = ("patient_id", "name", "email", "phone", "created_at")
Tables = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def chunks(file: Path) -> Iterator[list[list[str]]]:
    """The file's records (header skipped), ``CHUNK`` at a time."""
    with file.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        while chunk := list(itertools.islice(reader, CHUNK)):
            yield chunk


def rows_of(chunk: list[list[str]], first_id: int, now: Any, as_text: bool) -> Tables:
    """The users, patients and caregivers of ``chunk``; ids from ``first_id`` on (users and patients).
    ``now`` as the driver takes it; ``as_text``: dates stay ISO text (SQLite stores them so), checked."""
    users, patients, caregivers = [], [], []
    for number, cells in enumerate(chunk, start=first_id):
        first, last, email, mrn, phone, born, gender, carer, carer_email, carer_phone = cells
        users.append((number, f"patient:{mrn}", email.lower(), first, last, True, now))
        birth = date.fromisoformat(born) if born else None
        born_as = (born or None) if as_text else birth
        patients.append((number, number, mrn, phone or None, born_as, gender.upper() or None, now))
        if carer:
            caregivers.append((number, carer, carer_email or None, carer_phone or None, now))
    return users, patients, caregivers


def next_id(connection: Connection) -> int:
    """The first key free in both users and patients (wardbulk reserves keys the same way)."""
    query = "SELECT max(m) FROM (SELECT max(id) AS m FROM users UNION ALL SELECT max(id) FROM patients) AS t"
    return int(connection.execute(text(query)).scalar() or 0) + 1


def write_sqlite(connection: Connection, tables: Tables) -> None:
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for name, columns, rows in zip(("users", "patients", "caregivers"), _columns(), tables, strict=True):
        marks = ", ".join("?" for _ in columns)
        statement = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 (our names)
        cursor.executemany(statement, rows)


def write_postgres(connection: Connection, tables: Tables) -> None:
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    for name, columns, rows in zip(("users", "patients", "caregivers"), _columns(), tables, strict=True):
        statement = f"COPY {name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types([_POSTGRES_TYPES[column] for column in columns])
            for row in rows:
                copy.write_row(row)


_POSTGRES_TYPES = {
    "id": "int4",
    "user_id": "int4",
    "patient_id": "int4",
    "username": "varchar",
    "email": "varchar",
    "first_name": "varchar",
    "last_name": "varchar",
    "name": "varchar",
    "mrn": "varchar",
    "phone": "varchar",
    "gender": "varchar",
    "is_active": "bool",
    "date_of_birth": "date",
    "created_at": "timestamptz",
}


def _columns() -> tuple[tuple[str, ...], ...]:
    return USER_COLUMNS, PATIENT_COLUMNS, CAREGIVER_COLUMNS


def write_file(url: str, file: Path) -> int:
    """Write every row of ``file`` in one transaction; the number of patients written."""
    engine = build_engine(url, create=False)
    write = write_sqlite if engine.dialect.name == "sqlite" else write_postgres
    written, on_sqlite = 0, engine.dialect.name == "sqlite"
    now: Any = datetime.now(UTC)
    if on_sqlite:  # as SQLAlchemy's types store a time there: naive UTC, ISO text
        now = now.replace(tzinfo=None).isoformat(sep=" ")
    with engine.connect() as connection, connection.begin():
        first_id = next_id(connection)
        for chunk in chunks(file):
            write(connection, rows_of(chunk, first_id + written, now, on_sqlite))
            written += len(chunk)
        if engine.dialect.name == "postgresql":  # as wardbulk's reserved keys leave them
            for table in ("users", "patients"):
                connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {first_id + written - 1})")
                )
    engine.dispose()
    return written


if __name__ == "__main__":
    print(write_file(sys.argv[1], Path(sys.argv[2])))

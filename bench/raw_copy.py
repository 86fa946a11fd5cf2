"""``python -m bench.raw_copy CONNINFO FILE``: the PostgreSQL floor, timed by the caller as a whole process.

Connects with psycopg 3, streams FILE in 1 MiB blocks into ``COPY bare (...) FROM STDIN WITH (FORMAT csv,
HEADER true)`` (the bare all-TEXT table must exist), commits, and prints the number of rows copied. No
validation, no indexes, no constraints: no importer can beat it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

from bench.datagen import IMPORT_PATIENTS_HEADER

BLOCK = 2**20


def copy_file(conninfo: str, file: Path) -> int:
    """COPY every row of ``file`` into ``bare`` in one transaction; returns the row count."""
    columns = ", ".join(IMPORT_PATIENTS_HEADER)
    with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
        statement = f"COPY bare ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true)"
        with cursor.copy(statement) as copy, file.open("rb") as handle:
            while block := handle.read(BLOCK):
                copy.write(block)
        return cursor.rowcount


if __name__ == "__main__":
    print(copy_file(sys.argv[1], Path(sys.argv[2])))

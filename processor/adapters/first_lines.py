"""The first line of every key in a file, kept on disk: duplicate checks in flat memory at any file size.

A 5-million-row import has 10 million e-mails and patient identifiers to remember; in Python dictionaries
that is gigabytes. ``DiskFirstLineIndex`` keeps them in a private temporary SQLite database, one table of
``(key, line)`` per kind of key, with a bounded page cache. SQLite deletes such a database as soon as its
connection closes, and unlinks its file while open, so not even a kill -9 leaves it behind.
"""

from __future__ import annotations

import sqlite3
from types import TracebackType

CACHE_KIB = 32 * 1024  # the most the index holds in memory; the rest waits in the OS page cache
LOOKUP_BATCH = 500  # keys per lookup query, well under SQLite's limit of bound parameters


class DiskFirstLineIndex:
    """A ``FirstLineIndex`` (see ``operations.ports``) on a private temporary SQLite database."""

    def __init__(self) -> None:
        # "" is SQLite's private temporary on-disk database; autocommit mode, as BEGIN is ours.
        self._db = sqlite3.connect("", isolation_level=None)
        for pragma in (f"cache_size = -{CACHE_KIB}", "journal_mode = OFF", "synchronous = OFF"):
            self._db.execute(f"PRAGMA {pragma}")
        self._tables: dict[str, str] = {}

    def claim(self, kind: str, keyed_lines: list[tuple[str, int]]) -> list[int | None]:
        """See ``FirstLineIndex.claim``: one insert per call whatever its size, and one lookup only when
        some key was there already (a file whose keys are all new, the usual one, needs none)."""
        table = self._table(kind)
        first: dict[str, int] = {}
        for key, line in keyed_lines:
            first.setdefault(key, line)
        self._db.execute("BEGIN")
        changes_before = self._db.total_changes
        self._db.executemany(
            f"INSERT OR IGNORE INTO {table} (key, line) VALUES (?, ?)",  # noqa: S608
            first.items(),
        )
        if self._db.total_changes - changes_before < len(first):
            # The lookup also returns the keys just inserted, with the very lines ``first`` holds.
            first.update(self._lines_of(table, list(first)))
        self._db.execute("COMMIT")
        return [None if first[key] == line else first[key] for key, line in keyed_lines]

    def _lines_of(self, table: str, keys: list[str]) -> list[tuple[str, int]]:
        """The stored (key, line) of ``keys``, a bounded batch of bound parameters at a time: exact for
        any text (``json_each`` would cut a key at a NUL and miss a repeat)."""
        found: list[tuple[str, int]] = []
        for start in range(0, len(keys), LOOKUP_BATCH):
            batch = keys[start : start + LOOKUP_BATCH]
            marks = ", ".join("?" * len(batch))
            found += self._db.execute(
                f"SELECT key, line FROM {table} WHERE key IN ({marks})",  # noqa: S608 - marks only
                batch,
            ).fetchall()
        return found

    def _table(self, kind: str) -> str:
        if kind not in self._tables:
            table = f"first_lines_{len(self._tables)}"  # never the kind itself in SQL
            self._db.execute(
                f"CREATE TABLE {table} (key TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
            )
            self._tables[kind] = table
        return self._tables[kind]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DiskFirstLineIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

"""Engine construction: one place that knows SQLite's and PostgreSQL's connection rules.

- ``hide_parameters=True`` everywhere: SQL errors never carry row values into messages or logs.
- ``postgresql://`` URLs use psycopg 3 (the only PostgreSQL driver wardbulk installs).
- SQLite gets foreign keys on, WAL (readers never block the writer), ``synchronous=NORMAL`` (safe under WAL),
  a busy timeout, and real transactions: pysqlite's own transaction handling would run DDL outside any
  transaction and take the write lock only at the first write. wardbulk emits ``BEGIN`` itself, and
  ``BEGIN IMMEDIATE`` for connections with the ``sqlite_begin_immediate`` execution option (writers that
  must not deadlock on a lock upgrade).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
BEGIN_IMMEDIATE = "sqlite_begin_immediate"


def normalised_url(url: str | URL) -> URL:
    """The URL with the driver wardbulk ships: ``postgresql`` → ``postgresql+psycopg``."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def build_engine(url: str | URL, sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url``; for a SQLite file, its folder is created if missing.

    ``sqlite_busy_timeout_ms`` is how long a SQLite connection waits for a lock before failing with
    "database is locked" (which the pipeline then retries with backoff).
    """
    parsed = normalised_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_busy_timeout_ms)
    return create_engine(parsed, hide_parameters=True, pool_pre_ping=True)


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, hide_parameters=True)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that BEGIN is ours (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA foreign_keys = ON",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            f"PRAGMA busy_timeout = {busy_timeout_ms}",
        ):
            cursor.execute(pragma)
        cursor.close()

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

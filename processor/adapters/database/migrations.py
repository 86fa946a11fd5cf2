"""Bring any database to the current schema with Alembic, safely from several processes at once.

The whole upgrade runs in one transaction. On PostgreSQL that transaction first takes a
transaction-scoped advisory lock, so two hosts starting together migrate once: the second waits, then
finds the schema at head. On SQLite the transaction begins IMMEDIATE, which serialises writers the same way,
and runs with foreign keys off: a CHECK constraint changes only by rebuilding its table, and dropping the
old table would fail on every row that references it. Every foreign key is checked before the commit.
Alembic's env does not touch logging (no ``fileConfig``), so wardbulk's redacting setup stays in place.
Upgrading an empty database creates the schema, so only ``wardbulk init`` upgrades one that was never
initialised (``bootstrap`` decides); a missing SQLite file is created only by an engine built to create.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from processor.adapters.database.engine import BEGIN_IMMEDIATE, connect_to, database_label, failure_reason
from processor.errors import DatabaseUnavailable
from processor.logs import get_logger

log = get_logger(__name__)

SCRIPT_LOCATION = Path(__file__).with_name("migration_scripts")
# Any constant works; it only has to be the same for every wardbulk process ("wardbulk" in ASCII, mod 2^63).
ADVISORY_LOCK_KEY = 0x7761726462756C6B


@dataclass(frozen=True)
class MigrationResult:
    """The schema revision before and after ``upgrade_to_head``; equal when nothing had to change."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def head_revision() -> str | None:
    """The newest revision shipped with this version of wardbulk."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> MigrationResult:
    """Migrate to head in one locked transaction. Raises ``DatabaseUnavailable`` when the database
    cannot be reached or the migration fails on the database's side (a lock, a full disk).
    """
    return _migrate(engine, "upgrade", "head")


def downgrade_to(engine: Engine, revision: str = "base") -> MigrationResult:
    """Migrate down to ``revision`` (``base`` removes every table). For operators and tests."""
    return _migrate(engine, "downgrade", revision)


def _migrate(engine: Engine, direction: str, revision: str) -> MigrationResult:
    connection = connect_to(engine).execution_options(**{BEGIN_IMMEDIATE: True})
    try:
        with connection, _sqlite_foreign_keys_off(connection), connection.begin():
            _lock_against_other_migrators(connection)
            before = MigrationContext.configure(connection).get_current_revision()
            getattr(command, direction)(_config(connection), revision)
            after = MigrationContext.configure(connection).get_current_revision()
            _check_sqlite_foreign_keys(connection)
    except OperationalError as exc:
        reason = failure_reason(exc, engine.url)
        raise DatabaseUnavailable.migration_failed(database_label(engine), reason) from exc
    if before != after:
        log.info("database_migrated", direction=direction, before=before, after=after)
    return MigrationResult(before=before, after=after)


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys off for the block, on again after it (the pool reuses the connection).

    The pragma is a no-op inside a transaction, so it goes to the driver's connection before BEGIN
    (SQLAlchemy's own ``execute`` would begin one first).
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver_connection.execute("PRAGMA foreign_keys = ON")


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    """SQLite: refuse to commit a migration that left a row referencing nothing."""
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            tables = sorted({str(row[0]) for row in broken})
            raise RuntimeError(f"the migration broke foreign keys of {', '.join(tables)}; nothing changed")


def _lock_against_other_migrators(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config

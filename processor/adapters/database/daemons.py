"""Daemon heartbeats: each running daemon's row in ``daemon_heartbeats``, refreshed every few seconds,
so that ``wardbulk health`` (on any host that reaches the database) can tell a live daemon from a dead
or stuck one, and whether it is paused by a host fault.

A daemon marks its row stopped when it ends cleanly; rows of daemons stopped (or silent) for longer than
``FORGET_AFTER`` are deleted at the next start, so the table stays as small as the fleet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from processor.adapters.database.models import DaemonHeartbeat

FORGET_AFTER = timedelta(days=30)
BEAT_WAIT_MS = 2000


@dataclass(frozen=True)
class Beat:
    """What a daemon says each time it gives a sign of life."""

    owner: str
    host: str
    started_at: datetime
    at: datetime
    paused: bool
    files_processed: int


def record_beat(engine: Engine, beat: Beat) -> None:
    """Insert or refresh the daemon's row (one statement, its own short transaction)."""
    values = {
        "owner": beat.owner,
        "host": beat.host,
        "started_at": beat.started_at,
        "beat_at": beat.at,
        "stopped_at": None,
        "paused": beat.paused,
        "files_processed": beat.files_processed,
    }
    insert = sqlite_insert if engine.dialect.name == "sqlite" else postgresql_insert
    statement = insert(DaemonHeartbeat).values(values)
    refreshed = {
        key: statement.excluded[key] for key in ("beat_at", "stopped_at", "paused", "files_processed")
    }
    with engine.begin() as connection, _waiting_briefly(connection):
        connection.execute(statement.on_conflict_do_update(index_elements=["owner"], set_=refreshed))


@contextmanager
def _waiting_briefly(connection: Connection) -> Iterator[None]:
    """A beat waits a second or two for a lock, not a file's whole transaction: on SQLite the
    connection's busy timeout is shortened for the beat (and restored: the connection is pooled); on
    PostgreSQL the transaction gets a statement timeout."""
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {BEAT_WAIT_MS}")
        yield
        return
    before = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {BEAT_WAIT_MS}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(before or 0)}")


def record_stop(engine: Engine, owner: str, at: datetime) -> None:
    """The daemon ended cleanly."""
    with engine.begin() as connection:
        connection.execute(
            update(DaemonHeartbeat).where(DaemonHeartbeat.owner == owner).values(stopped_at=at)
        )


def forget(engine: Engine, owners: list[str]) -> None:
    """Delete these daemons' rows (once their unclean stop has been reported)."""
    if owners:
        with engine.begin() as connection:
            connection.execute(delete(DaemonHeartbeat).where(DaemonHeartbeat.owner.in_(owners)))


def forget_old(engine: Engine, now: datetime) -> None:
    """Delete the rows of daemons stopped or silent for longer than ``FORGET_AFTER``."""
    cutoff = now - FORGET_AFTER
    with engine.begin() as connection:
        connection.execute(
            delete(DaemonHeartbeat).where(
                or_(DaemonHeartbeat.stopped_at < cutoff, DaemonHeartbeat.beat_at < cutoff)
            )
        )


@dataclass(frozen=True)
class DaemonState:
    """A daemon as ``wardbulk health`` sees it."""

    owner: str
    host: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
    paused: bool
    files_processed: int


def daemon_states(connection: Connection) -> list[DaemonState]:
    """Every daemon the table knows, the latest sign of life first."""
    query = select(
        DaemonHeartbeat.owner,
        DaemonHeartbeat.host,
        DaemonHeartbeat.started_at,
        DaemonHeartbeat.beat_at,
        DaemonHeartbeat.stopped_at,
        DaemonHeartbeat.paused,
        DaemonHeartbeat.files_processed,
    ).order_by(DaemonHeartbeat.beat_at.desc())
    return [DaemonState(*row) for row in connection.execute(query)]

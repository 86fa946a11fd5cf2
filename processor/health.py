"""``wardbulk health``: one verdict for monitoring, with Nagios's exit codes (0 OK, 1 WARNING,
2 CRITICAL), from four checks:

- the database: reachable, initialised, at the current schema;
- the daemons: at least one running (a fresh heartbeat, or on this host a live process; see
  ``liveness``), none paused by the host, none silent for long;
- the inbox: the files waiting, and the oldest one's age against ``max_wait``;
- the last failed file (for information: a failed file is the sender's, not the daemon's, problem).

Read-only: it creates, migrates and writes nothing. Its output names files and codes, never cell values.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from processor.adapters import inbox, owners
from processor.adapters.database import schema_version
from processor.adapters.database.daemons import DaemonState, daemon_states
from processor.adapters.database.models import BulkOperation
from processor.core.operation_kinds import OperationType
from processor.core.operation_types import OperationStatus
from processor.errors import WardbulkError
from processor.settings import Settings

# A daemon on another host is running while its heartbeat is younger than this: longer than the 2
# minutes without progress after which a daemon stops beating, plus a few beats (and some clock skew).
FRESH = timedelta(minutes=5)
SILENT = timedelta(minutes=5)  # a local daemon silent this long is stuck, or held by SQLite's lock


class Level(IntEnum):
    """A check's verdict; the command exits with the worst."""

    OK = 0
    WARNING = 1
    CRITICAL = 2


@dataclass(frozen=True)
class Check:
    """One check's verdict, a line for people and details for scripts."""

    name: str
    level: Level
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def check_health(
    settings: Settings, engine: Engine, max_wait: timedelta, now: datetime | None = None
) -> list[Check]:
    """The four checks (see the module); the daemons' and the last error's need the database."""
    now = now or datetime.now(UTC)
    checks = [_database(engine)]
    if checks[0].level is Level.CRITICAL:
        checks.append(Check("daemon", Level.CRITICAL, "unknown: the database cannot be read"))
    elif checks[0].level is Level.WARNING:  # an older schema may not have the heartbeats yet
        checks.append(Check("daemon", Level.WARNING, "unknown until the schema is upgraded"))
    else:
        with engine.connect() as connection:
            checks += [_daemons(daemon_states(connection), now), _last_failure(connection)]
    checks.insert(2, _backlog(settings, max_wait, now))
    return checks


def _database(engine: Engine) -> Check:
    try:
        revisions = schema_version.recorded_revisions(engine)
    except WardbulkError as exc:  # its message names the database (password masked) and the reason
        return Check("database", Level.CRITICAL, f"unreachable: {exc}")
    except Exception as exc:  # anything else: its class only (a driver's text may hold the URL)
        return Check("database", Level.CRITICAL, f"unreachable ({type(exc).__name__})")
    if revisions is None:
        return Check("database", Level.CRITICAL, "not initialised: run wardbulk init")
    if not schema_version.is_head(revisions):
        return Check(
            "database", Level.WARNING, f"at schema {', '.join(revisions)}: a daemon upgrades it at start"
        )
    return Check("database", Level.OK, f"reachable, schema {revisions[0]}", {"schema": revisions[0]})


def _daemons(states: list[DaemonState], now: datetime) -> Check:
    running = [state for state in states if is_running(state, now)]
    if not running:
        if not states:
            return Check("daemon", Level.CRITICAL, "no daemon has run on this database")
        last = states[0]
        how = "stopped cleanly" if last.stopped_at else "silent (killed, crashed, or its host is down)"
        return Check(
            "daemon", Level.CRITICAL, f"none running: the last, on {last.host}, {how} at {_at(last.beat_at)}"
        )
    details = {"running": [_described(state, now) for state in running]}
    paused = [state.host for state in running if state.paused]
    if paused:
        return Check(
            "daemon",
            Level.WARNING,
            f"paused on {', '.join(paused)}: the host cannot take files (see its log)",
            details,
        )
    silent = [state for state in running if now - state.beat_at > SILENT]
    if silent:
        minutes = int((now - silent[0].beat_at).total_seconds() // 60)
        message = f"no heartbeat for {minutes} min from {silent[0].host}: stuck, or a long file holds SQLite"
        return Check("daemon", Level.WARNING, message, details)
    processed = sum(state.files_processed for state in running)
    hosts = ", ".join(sorted({state.host for state in running}))
    return Check(
        "daemon", Level.OK, f"{len(running)} running on {hosts}, {processed} files processed", details
    )


def is_running(state: DaemonState, now: datetime) -> bool:
    """On this host the process table is the truth (a killed daemon is gone at once, a daemon whose
    beats SQLite's lock holds back is still there); elsewhere a fresh heartbeat."""
    if state.stopped_at is not None:
        return False
    if state.owner == owners.this_process():  # the daemon asking about itself (its metrics)
        return True
    if owners.is_local(state.owner):
        return not owners.is_abandoned(state.owner, state.beat_at, now)
    return now - state.beat_at <= FRESH


def _described(state: DaemonState, now: datetime) -> dict[str, Any]:
    return {
        "host": state.host,
        "started_at": _at(state.started_at),
        "heartbeat_age_s": round((now - state.beat_at).total_seconds(), 1),
        "paused": state.paused,
        "files_processed": state.files_processed,
    }


def _backlog(settings: Settings, max_wait: timedelta, now: datetime) -> Check:
    """The files the daemon would take (as ``inbox.scan`` finds them), the oldest first."""
    if not settings.inbox_dir.is_dir():
        return Check("inbox", Level.CRITICAL, f"{settings.inbox_dir} is not there (a share not mounted?)")
    try:
        waiting = list(waiting_files(settings))
    except OSError as exc:
        return Check("inbox", Level.CRITICAL, f"{settings.inbox_dir} cannot be read ({type(exc).__name__})")
    if not waiting:
        return Check("inbox", Level.OK, "no file waiting", {"waiting": 0})
    oldest_path, oldest_mtime = waiting[0]
    age = now - datetime.fromtimestamp(oldest_mtime, UTC)
    details = {
        "waiting": len(waiting),
        "oldest": str(oldest_path),
        "oldest_age_s": round(age.total_seconds()),
    }
    where = oldest_path.relative_to(settings.inbox_dir)
    message = f"{len(waiting)} files waiting, the oldest for {_minutes(age)} ({where})"
    level = Level.WARNING if age > max_wait else Level.OK
    return Check("inbox", level, message + (f", over {_minutes(max_wait)}" if level else ""), details)


@dataclass(frozen=True)
class Waiting:
    """A file waiting in the inbox, as the daemon's own scan finds it, and its ``stat`` at the scan."""

    file: inbox.InboxFile
    status: os.stat_result


def waiting_entries(settings: Settings) -> Iterator[Waiting]:
    """The backlog (what ``inbox.scan`` would give the daemon), oldest modification first; a file taken
    meanwhile, or one that cannot be looked at (a symbolic link's loop, say: never followed), is skipped.
    Raises OSError when the inbox cannot be read."""
    for found in inbox.scan(settings.inbox_dir, list(OperationType), settings.sender_folders()):
        try:
            yield Waiting(found, found.path.lstat())
        except OSError:
            continue


def waiting_files(settings: Settings) -> Iterator[tuple[Path, float]]:
    """The waiting files and their modification times, oldest first; one taken meanwhile is skipped."""
    for waiting in waiting_entries(settings):
        yield waiting.file.path, waiting.status.st_mtime


def _last_failure(connection: Connection) -> Check:
    query = (
        select(
            BulkOperation.id,
            BulkOperation.operation_type,
            BulkOperation.error_code,
            BulkOperation.completed_at,
            BulkOperation.input_file,
        )
        .where(BulkOperation.status == OperationStatus.FAILED.value)
        .order_by(BulkOperation.id.desc())
        .limit(1)
    )
    row = connection.execute(query).first()
    if row is None:
        return Check("last_failure", Level.OK, "no file has failed")
    name = Path(row.input_file).name if row.input_file else "?"
    when = _at(row.completed_at) if row.completed_at else "?"
    details = {"operation_id": row.id, "error_code": row.error_code, "completed_at": when, "file": name}
    return Check(
        "last_failure",
        Level.OK,
        f"operation {row.id} ({row.operation_type}, {name}): {row.error_code} at {when}",
        details,
    )


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} min"

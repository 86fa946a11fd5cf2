"""BulkOperation lifecycle in the database: register and claim, progress, complete, fail, recover.

Every function that opens its own transaction raises the project's database errors
(``processor.errors.DatabaseError``), not SQLAlchemy's; ``complete`` runs on the caller's connection,
inside a unit of work, which translates what its block raised.

pending → processing → completed | failed. ``complete`` runs inside the file's own transaction, so an
operation is ``completed`` exactly when its rows are committed; everything else uses short transactions.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, update

from processor.adapters.database.bulk import is_among
from processor.adapters.database.engine import BEGIN_IMMEDIATE
from processor.adapters.database.models import BulkOperation, FileClaim, User
from processor.adapters.database.translation import translates_database_errors
from processor.core.operation_kinds import OperationType
from processor.core.operation_types import OperationStatus

ERROR_MESSAGE_LIMIT = 20  # the seed keeps the first 20 errors in error_message
UNFINISHED = (OperationStatus.PENDING.value, OperationStatus.PROCESSING.value)
ENDED = (OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.VALIDATED)

# Every file runs these statements; built once on the Core tables (ORM attributes and a fresh statement
# per call cost more Python than the SQL itself takes on SQLite), their values given as parameters.
_OPERATIONS = cast(Table, BulkOperation.__table__)
_CLAIMS = cast(Table, FileClaim.__table__)
_USERS = cast(Table, User.__table__)
_USER_ID = select(_USERS.c.id).where(_USERS.c.username == bindparam("b_username"))
_INSERT_OPERATION = insert(_OPERATIONS).returning(_OPERATIONS.c.id)
_HOLDER = select(_CLAIMS.c.operation_id).where(
    _CLAIMS.c.operation_type == bindparam("b_type"), _CLAIMS.c.sha256 == bindparam("b_sha256")
)
# The operation, while its owner has it and it has not ended; the columns to set are the other parameters.
_UPDATE_OWNED = update(_OPERATIONS).where(
    _OPERATIONS.c.id == bindparam("b_id"),
    _OPERATIONS.c.host == bindparam("b_owner"),
    _OPERATIONS.c.status.in_(UNFINISHED),
)


@dataclass(frozen=True)
class Counts:
    """Record counts of one file."""

    total: int
    successful: int
    failed: int


@dataclass(frozen=True)
class NewOperation:
    """What is known about a file when it is claimed."""

    operation_type: OperationType
    input_file: str
    sha256: str | None
    initiated_by: str
    host: str
    dry_run: bool = False  # read and checked, never applied (``wardbulk validate``)
    sender: str | None = None  # the configured sender whose file it is


@cache
def _insert_unless_conflict(dialect_name: str, table: Table, *index_elements: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for a dialect, built once.

    The dialect's module is imported by name: it is loaded already (the engine uses it), while importing
    the PostgreSQL one up front would cost every SQLite command its load time.
    """
    dialect = importlib.import_module(f"sqlalchemy.dialects.{dialect_name}")
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(index_elements) or None)


def _user_id(connection: Connection, username: str) -> int | None:
    return connection.execute(_USER_ID, {"b_username": username}).scalar_one_or_none()


def user_id_for(connection: Connection, username: str, now: datetime) -> int:
    """The id of the User with ``username``, created on first sight (safe against concurrent creation)."""
    known = _user_id(connection, username)  # the usual case: one statement, not an upsert and a read
    if known is not None:
        return int(known)
    row = {
        "username": username,
        "email": None,
        "first_name": "",
        "last_name": "",
        "is_active": True,
        "created_at": now,
    }
    connection.execute(_insert_unless_conflict(connection.dialect.name, _USERS, "username"), row)
    user_id = _user_id(connection, username)
    assert user_id is not None  # inserted by now, by us or by whoever won the race
    return int(user_id)


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that takes SQLite's write lock at ``BEGIN``, for one that reads before it writes.

    (A deferred SQLite transaction that has read cannot start writing once another writer committed.)
    """
    with engine.connect().execution_options(**{BEGIN_IMMEDIATE: True}) as connection, connection.begin():
        yield connection


@translates_database_errors
def register(engine: Engine, new: NewOperation, now: datetime) -> int:
    """Insert the operation, pending, owned by ``new.host``; returns its id. See ``claim_bytes``."""
    with _writing(engine) as connection:
        return _insert_operation(connection, new, now, OperationStatus.PENDING)


@translates_database_errors
def claim_bytes(
    engine: Engine, operation_type: OperationType, sha256: str, operation_id: int, now: datetime
) -> int:
    """Claim these bytes for ``operation_id`` unless another operation holds them; returns the holder.

    Idempotent, so recovery may call it again: the holder is this operation or the one that was first.
    """
    with engine.begin() as connection:
        return _claim_in(connection, operation_type, sha256, operation_id, now)


def _claim_in(
    connection: Connection, operation_type: OperationType, sha256: str, operation_id: int, now: datetime
) -> int:
    """``claim_bytes`` inside the caller's transaction.

    ``ON CONFLICT DO NOTHING`` instead of catching the unique violation, which on PostgreSQL would abort
    the caller's transaction. Each statement sees the latest commits (READ COMMITTED; on SQLite the
    transaction holds the write lock), so a holder that released its claim meanwhile is seen as gone.
    """
    row = {
        "operation_type": operation_type.value,
        "sha256": sha256,
        "operation_id": operation_id,
        "claimed_at": now,
    }
    holder_of = {"b_type": operation_type.value, "b_sha256": sha256}
    for _ in range(3):  # the holder may release its claim (it failed) between our insert and our read
        connection.execute(_insert_unless_conflict(connection.dialect.name, _CLAIMS), row)
        holder = connection.execute(_HOLDER, holder_of).scalar_one_or_none()
        if holder is not None:
            return int(holder)
    raise ConcurrentClaim("the file claim kept changing hands")


class ConcurrentClaim(Exception):
    """Claims on the same bytes were taken and released faster than we could read them."""


class OwnershipLost(Exception):
    """Another process took this operation over (it thought us dead): we must not finish it."""


def _insert_operation(
    connection: Connection, new: NewOperation, now: datetime, status: OperationStatus
) -> int:
    row = {
        "operation_type": new.operation_type.value,
        "status": status.value,
        "initiated_by_id": user_id_for(connection, new.initiated_by, now),
        "created_at": now,
        "started_at": now,
        "heartbeat_at": now,
        "input_file": new.input_file,
        "sha256": new.sha256,
        "host": new.host,
        "dry_run": new.dry_run,
        "sender": new.sender,
    }
    return int(connection.execute(_INSERT_OPERATION, row).scalar_one())


def _update_owned(connection: Connection, operation_id: int, owner: str, values: dict[str, Any]) -> bool:
    """Set ``values`` on the operation if ``owner`` still has it and it has not ended; whether it did."""
    result = connection.execute(_UPDATE_OWNED, {"b_id": operation_id, "b_owner": owner, **values})
    return bool(result.rowcount == 1)


def _expect_owned(updated: bool) -> None:
    if not updated:
        raise OwnershipLost("the operation was taken over by another process")


@translates_database_errors
def mark_processing(engine: Engine, operation_id: int, owner: str, now: datetime) -> None:
    """Start (or, after an interruption that never committed, restart) an operation from zero."""
    with engine.begin() as connection:
        _mark_processing_in(connection, operation_id, owner, now)


def _mark_processing_in(connection: Connection, operation_id: int, owner: str, now: datetime) -> None:
    values = {"status": OperationStatus.PROCESSING.value, "processed_records": 0, "heartbeat_at": now}
    _expect_owned(_update_owned(connection, operation_id, owner, values))


@dataclass(frozen=True)
class BytesToClaim:
    """The content a file's operation claims: its type and SHA-256 (see ``claim_bytes``)."""

    operation_type: OperationType
    sha256: str


@translates_database_errors
def bytes_holder(engine: Engine, operation_type: OperationType, sha256: str) -> int | None:
    """The operation that holds these bytes (applied them, or is applying them), if any; nothing is
    claimed (a dry run asks what a real run would meet)."""
    with engine.connect() as connection:
        holder = connection.execute(_HOLDER, {"b_type": operation_type.value, "b_sha256": sha256})
        found = holder.scalar_one_or_none()
    return None if found is None else int(found)


@translates_database_errors
def start_processing(
    engine: Engine, operation_id: int, owner: str, now: datetime, claim: BytesToClaim | None
) -> int | None:
    """``claim_bytes`` (with ``claim``) and ``mark_processing`` in one short transaction.

    Returns the holder of the bytes (None without ``claim``). The operation is marked processing even
    when another operation holds them: the caller then fails it as a duplicate. Raises ``OwnershipLost``
    (and claims nothing) when the operation is no longer ``owner``'s.
    """
    with engine.begin() as connection:
        holder = None
        if claim is not None:
            holder = _claim_in(connection, claim.operation_type, claim.sha256, operation_id, now)
        _mark_processing_in(connection, operation_id, owner, now)
    return holder


@translates_database_errors
def record_progress(engine: Engine, operation_id: int, owner: str, processed: int, now: datetime) -> None:
    """Publish how many records have been validated so far (a short transaction of its own)."""
    with engine.begin() as connection:
        values = {"processed_records": processed, "heartbeat_at": now}
        _expect_owned(_update_owned(connection, operation_id, owner, values))


@translates_database_errors
def beat(engine: Engine, operation_id: int, owner: str, now: datetime) -> None:
    """Say that the owner is alive and working on the operation."""
    with engine.begin() as connection:
        _update_owned(connection, operation_id, owner, {"heartbeat_at": now})


@translates_database_errors
def set_pending(engine: Engine, operation_id: int, owner: str) -> None:
    """A graceful stop rolled the file back: it waits, claimed, for the next start."""
    with engine.begin() as connection:
        values = {"status": OperationStatus.PENDING.value, "processed_records": 0}
        _update_owned(connection, operation_id, owner, values)


def _finished(
    status: OperationStatus, counts: Counts, errors: list[str], output_file: str, now: datetime
) -> dict[str, object]:
    """The column values of an operation that has ended, either way."""
    return {
        "status": status.value,
        "completed_at": now,
        "heartbeat_at": now,
        "total_records": counts.total,
        "processed_records": counts.total,
        "successful_records": counts.successful,
        "failed_records": counts.failed,
        "error_message": _first_errors(errors),
        "output_file": output_file,
    }


def complete(
    connection: Connection,
    operation_id: int,
    owner: str,
    counts: Counts,
    errors: list[str],
    output_file: str,
    now: datetime,
) -> None:
    """Mark completed inside the file's transaction: committed together with the file's rows."""
    values = _finished(OperationStatus.COMPLETED, counts, errors, output_file, now)
    _expect_owned(_update_owned(connection, operation_id, owner, values))


@translates_database_errors
def validated(
    engine: Engine,
    operation_id: int,
    owner: str,
    counts: Counts,
    errors: list[str],
    output_file: str,
    now: datetime,
) -> None:
    """Mark a dry run validated: read and checked to the end, nothing applied."""
    values = _finished(OperationStatus.VALIDATED, counts, errors, output_file, now)
    with engine.begin() as connection:
        _expect_owned(_update_owned(connection, operation_id, owner, values))


@translates_database_errors
def fail(
    engine: Engine,
    operation_id: int,
    owner: str,
    counts: Counts,
    code: str,
    errors: list[str],
    output_file: str,
    now: datetime,
    release_claim: bool = True,
) -> None:
    """Mark failed with nothing applied; the claim is released so corrected identical bytes may return."""
    nothing_applied = Counts(counts.total, 0, counts.failed)
    values = _finished(OperationStatus.FAILED, nothing_applied, errors, output_file, now)
    with engine.begin() as connection:
        _expect_owned(_update_owned(connection, operation_id, owner, {**values, "error_code": code}))
        if release_claim:
            connection.execute(delete(FileClaim).where(FileClaim.operation_id == operation_id))


def _first_errors(errors: list[str]) -> str | None:
    return "\n".join(errors[:ERROR_MESSAGE_LIMIT]) or None


@translates_database_errors
def load(engine: Engine, operation_id: int) -> BulkOperation:
    """One operation row, detached (read-only use)."""
    with engine.connect() as connection:
        row = connection.execute(
            select(BulkOperation.__table__).where(BulkOperation.id == operation_id)
        ).one()
    return BulkOperation(**row._asdict())


@translates_database_errors
def unfinished_operations(engine: Engine) -> list[BulkOperation]:
    """Every operation still pending or processing (whoever owns it), oldest first."""
    query = (
        select(BulkOperation.__table__).where(BulkOperation.status.in_(UNFINISHED)).order_by(BulkOperation.id)
    )
    with engine.connect() as connection:
        return [BulkOperation(**row._asdict()) for row in connection.execute(query)]


@translates_database_errors
def unfinished_among(engine: Engine, operation_ids: list[int]) -> set[int]:
    """Which of these operations are still pending or processing."""
    with engine.connect() as connection:
        query = select(BulkOperation.id).where(
            is_among(connection, BulkOperation.id, operation_ids), BulkOperation.status.in_(UNFINISHED)
        )
        return set(connection.scalars(query))


@translates_database_errors
def committed_but_unpublished(engine: Engine, operation_ids: list[int]) -> list[BulkOperation]:
    """Of these operations, the ones already completed or failed (their outbox step may be unfinished)."""
    if not operation_ids:
        return []
    query = select(BulkOperation.__table__).where(
        BulkOperation.id.in_(operation_ids),
        BulkOperation.status.in_([status.value for status in ENDED]),
    )
    with engine.connect() as connection:
        return [BulkOperation(**row._asdict()) for row in connection.execute(query)]


@translates_database_errors
def take_over(
    engine: Engine, operation_id: int, previous_owner: str | None, owner: str, now: datetime
) -> bool:
    """Atomically become the owner of an abandoned operation; False if someone else moved first."""
    with engine.begin() as connection:
        result = connection.execute(
            update(BulkOperation)
            .where(BulkOperation.id == operation_id, BulkOperation.status.in_(UNFINISHED))
            .where(BulkOperation.host == previous_owner if previous_owner else BulkOperation.host.is_(None))
            .values(host=owner, heartbeat_at=now)
        )
        return result.rowcount == 1


@translates_database_errors
def mark_outputs_purged(engine: Engine, operation_ids: set[int], now: datetime) -> int:
    """Record that retention deleted (some of) these operations' outbox files; returns how many were
    newly marked. The history then says so instead of linking to files that are gone."""
    if not operation_ids:
        return 0
    with engine.begin() as connection:
        return connection.execute(
            update(BulkOperation)
            .where(is_among(connection, BulkOperation.id, list(operation_ids)))
            .where(BulkOperation.outputs_purged_at.is_(None))
            .values(outputs_purged_at=now)
        ).rowcount


@translates_database_errors
def recorded_inputs(engine: Engine, operation_ids: set[int]) -> dict[int, tuple[OperationType, str]]:
    """The type and input name of each of these operations that exists (one query)."""
    if not operation_ids:
        return {}
    query = select(BulkOperation.id, BulkOperation.operation_type, BulkOperation.input_file)
    with engine.connect() as connection:
        rows = connection.execute(query.where(is_among(connection, BulkOperation.id, list(operation_ids))))
        return {row.id: (OperationType(row.operation_type), row.input_file or "") for row in rows}

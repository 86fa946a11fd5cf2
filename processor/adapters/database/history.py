"""Operation history for admins: pages of operations, one operation in full, and statistics.

The seed's history page as queries: newest first, filters by type, status and creation date range.
Written for years of history (issue 13: with a million operations, ``ops stats`` loaded every one into
Python, 70 s and 2.2 GB). Nothing here brings more than one page of operations into Python: a page is a
keyset range of an index (newest first by id, below ``before``), one operation is read by its key, and
the statistics are counted, summed and ranked by the database from the indexes of migration 0005.

Days are local days of the wards' zone (``HistoryFilter.zone``; UTC by default): from local midnight to
local midnight, 23 or 25 hours when the clocks change. The tallies of migration 0007 count UTC days;
for another zone the counts take the tallies of the UTC days wholly inside the local range and count
the hours at its edges (less than a day at each end) from the rows, by the creation-time index, so
they stay exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Numeric, and_, case, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from processor.adapters.database.models import OPERATION_DURATION, BulkOperation, User
from processor.adapters.database.tallies import OperationDurationTally, OperationTally, bucket_bounds
from processor.core.clock import day_range
from processor.core.operation_types import OperationStatus

IN_PROGRESS = (OperationStatus.PENDING.value, OperationStatus.PROCESSING.value)


@dataclass(frozen=True)
class HistoryFilter:
    """The seed's filter form: operation type, status, and a creation date range (both days included,
    local days of ``zone``).

    ``limit`` and ``before`` page a list: at most ``limit`` operations, only those with an id below
    ``before`` (the last id of the previous page). Statistics ignore both.
    """

    operation_type: str | None = None
    status: str | None = None
    since: date | None = None
    until: date | None = None
    limit: int = 100
    before: int | None = None
    sender: str | None = None  # lists only; the statistics' tallies count no senders
    zone: tzinfo = UTC  # the wards' zone: whose days ``since`` and ``until`` are

    def instants(self) -> tuple[datetime | None, datetime | None]:
        """The creation times (UTC) the days cover: from the start of ``since`` to before the start of
        the day after ``until``, in ``zone``."""
        return day_range(self.since, self.until, self.zone)


def _as_dict(operation: BulkOperation, initiated_by: str | None) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": operation.id,
        "operation_type": operation.operation_type,
        "status": operation.status,
        "input_file": operation.input_file,
        "sha256": operation.sha256,
        "initiated_by": initiated_by,
        "host": operation.host,
        "created_at": iso(operation.created_at),
        "started_at": iso(operation.started_at),
        "completed_at": iso(operation.completed_at),
        "duration_s": operation.duration,
        "total_records": operation.total_records,
        "processed_records": operation.processed_records,
        "successful_records": operation.successful_records,
        "failed_records": operation.failed_records,
        "success_rate": operation.success_rate,
        "error_code": operation.error_code,
        "error_message": operation.error_message,
        "output_file": operation.output_file,
        "outputs_purged_at": iso(operation.outputs_purged_at),
        "sender": operation.sender,
        "dry_run": operation.dry_run,
    }


def _conditions(wanted: HistoryFilter, *, walking: bool = False) -> list[ColumnElement[bool]]:
    """``wanted``'s type, status and creation days as SQL conditions (its page, ``limit`` and ``before``,
    is the caller's). Days are local days of ``wanted.zone``: ``until`` includes the whole of that day.

    ``walking``: the statistics walk indexes in duration order (or type and status order) and check the
    status and the dates in them; these two conditions must then not make SQLite seek by their own
    index instead (see ``_Unseekable``).
    """
    status: ColumnElement[Any] = BulkOperation.status.expression
    created_at: ColumnElement[Any] = BulkOperation.created_at.expression
    if walking:
        status, created_at = _Unseekable(status), _Unseekable(created_at)
    conditions = []
    if wanted.operation_type:
        conditions.append(BulkOperation.operation_type == wanted.operation_type)
    if wanted.status:
        conditions.append(status == wanted.status)
    since, until = wanted.instants()
    if since is not None:
        conditions.append(created_at >= since)
    if until is not None:
        conditions.append(created_at < until)
    return conditions


class _Unseekable(FunctionElement[Any]):
    """A column that the database is not to choose an index by: SQLite's unary ``+`` (its documented way to
    keep a condition from choosing the plan), the plain column elsewhere (PostgreSQL's planner weighs a
    range by its statistics). Without it SQLite seeks a date range by the creation-time index, then reads
    and sorts every operation in the range (tens of seconds for a year of millions); walking the
    statistics' own indexes costs at most one pass over their entries, whatever the range.
    """

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(_Unseekable)
def _plain_column(element: _Unseekable, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_Unseekable, "sqlite")
def _sqlite_unseekable(element: _Unseekable, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


def _with_initiator() -> Any:
    return select(BulkOperation, User.username).outerjoin(User, User.id == BulkOperation.initiated_by_id)


def count_operations(engine: Engine, wanted: HistoryFilter) -> int:
    """How many operations match ``wanted``'s filters (its page aside): one count over the range of the
    index its filter seeks (a recent date range is a short range of the creation-time index)."""
    query = select(func.count()).select_from(BulkOperation).where(*_conditions(wanted))
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def list_operations(engine: Engine, wanted: HistoryFilter) -> list[dict[str, Any]]:
    """Operations matching ``wanted``, newest first, at most ``wanted.limit``, with ids below
    ``wanted.before`` when it is given: the next page starts before the last id of this one.

    Newest first is highest id first: ids grow with creation. The page's ids come from one index alone
    (the primary key, or the type, status or creation-time index), then only those rows are read.
    """
    page = select(BulkOperation.id).where(*_conditions(wanted))
    if wanted.sender is not None:
        page = page.where(BulkOperation.sender == wanted.sender)
    if wanted.before is not None:
        page = page.where(BulkOperation.id < wanted.before)
    page = page.order_by(BulkOperation.id.desc()).limit(wanted.limit)
    query = _with_initiator().where(BulkOperation.id.in_(page)).order_by(BulkOperation.id.desc())
    with Session(engine) as session:
        rows = session.execute(query).all()
    return [_as_dict(operation, username) for operation, username in rows]


def operation_detail(engine: Engine, operation_id: int) -> dict[str, Any] | None:
    """Everything about one operation, or None if there is none with that id (read by its key alone)."""
    with Session(engine) as session:
        row = session.execute(_with_initiator().where(BulkOperation.id == operation_id)).first()
    if row is None:
        return None
    detail = _as_dict(row[0], row[1])
    detail["first_errors"] = (row[0].error_message or "").splitlines()
    detail["progress_pct"] = (
        round(100 * row[0].processed_records / row[0].total_records, 1) if row[0].total_records else None
    )
    return detail


@dataclass
class _Totals:
    """One type's (or all types') counts; ``finished`` operations are those with a duration."""

    operations: int = 0
    completed: int = 0
    in_progress: int = 0
    failed: int = 0
    records: int = 0
    successful_records: int = 0
    finished: int = 0

    def add(self, other: _Totals) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @classmethod
    def of(cls, parts: Iterable[_Totals]) -> _Totals:
        """The sum of ``parts``."""
        total = cls()
        for part in parts:
            total.add(part)
        return total


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose statements all see the same state of the database, so that the counts and the
    ranks picked with them agree while the daemon goes on writing. SQLite: one transaction (the engine
    begins one) reads one snapshot; PostgreSQL needs REPEATABLE READ for that.
    """
    with engine.connect() as connection:
        isolation = {"isolation_level": "REPEATABLE READ"} if connection.dialect.name == "postgresql" else {}
        with connection.execution_options(**isolation).begin():
            yield connection


def operation_totals(engine: Engine, wanted: HistoryFilter | None = None) -> dict[str, Any]:
    """``operation_stats(...)["all"]`` without the durations (``median_s`` and ``p95_s`` None): the
    counts and the record success rate alone, for a page that shows no durations (one small read)."""
    with engine.connect() as connection:
        totals = _totals_by_type(connection, wanted or HistoryFilter())
    return _summary(_Totals.of(totals.values()), {"median_s": None, "p95_s": None})


def _totals_by_type(connection: Connection, wanted: HistoryFilter) -> dict[str, _Totals]:
    """Counts and record sums per type (types in name order) from the tallies: a sum over one row per
    type, status and UTC day, whatever the number of operations; plus, when the local days do not start
    at UTC midnight, the edge hours counted from the rows (``_split_days``)."""
    whole_days, edges = _split_days(wanted)
    totals: dict[str, _Totals] = {}
    parts = [_counted_rows(wanted, since, until) for since, until in edges]
    if whole_days is not None:
        parts.insert(0, _tallied(wanted, *whole_days))
    for query in parts:
        for kind, status, count, records, successful, finished in connection.execute(query):
            part = _status_totals(status, count, records, successful, finished)
            totals.setdefault(kind, _Totals()).add(part)
    return dict(sorted(totals.items()))


Edge = tuple[datetime | None, datetime | None]


def _split_days(wanted: HistoryFilter) -> tuple[tuple[date | None, date | None] | None, list[Edge]]:
    """``wanted``'s creation times as the UTC days the tallies can count (first and last, None: no
    bound; or None for none at all) and the ranges at the edges, less than a day each, whose rows are
    counted instead. In UTC the local days are the UTC days: no edges."""
    since, until = wanted.instants()
    first = None if since is None else _utc_midnight(since, up=True)
    beyond = None if until is None else _utc_midnight(until, up=False)
    if first is not None and beyond is not None and first >= beyond:
        return None, [(since, until)]  # no whole UTC day inside (one local day, say): all from the rows
    edges: list[Edge] = []
    if since is not None and first is not None and since < first:
        edges.append((since, first))
    if until is not None and beyond is not None and beyond < until:
        edges.append((beyond, until))
    last = None if beyond is None else (beyond - timedelta(days=1)).date()
    return (None if first is None else first.date(), last), edges


def _utc_midnight(moment: datetime, *, up: bool) -> datetime:
    """The UTC midnight at or after (``up``) or at or before ``moment``."""
    moment = moment.astimezone(UTC)
    midnight = datetime.combine(moment.date(), time.min, tzinfo=UTC)
    return midnight + timedelta(days=1) if up and midnight < moment else midnight


def _counted_rows(wanted: HistoryFilter, since: datetime | None, until: datetime | None) -> Any:
    """What a tally row holds, per type and status, counted from the operations created from ``since``
    up to ``until``: one range of the creation-time index, less than a day."""
    op = BulkOperation
    finished = case((and_(op.started_at.is_not(None), op.completed_at.is_not(None)), 1), else_=0)
    conditions: list[ColumnElement[bool]] = []
    # The type and status must not choose the plan: SQLite would read every operation of the type
    # (by the duration index) instead of the edge's hours of the creation-time index.
    if wanted.operation_type:
        conditions.append(_Unseekable(op.operation_type.expression) == wanted.operation_type)
    if wanted.status:
        conditions.append(_Unseekable(op.status.expression) == wanted.status)
    if since is not None:
        conditions.append(op.created_at >= since)
    if until is not None:
        conditions.append(op.created_at < until)
    return (
        select(
            op.operation_type,
            op.status,
            func.count(),
            func.coalesce(func.sum(op.total_records), 0),
            func.coalesce(func.sum(op.successful_records), 0),
            func.sum(finished),
        )
        .where(*conditions)
        .group_by(op.operation_type, op.status)
    )


def _tallied(wanted: HistoryFilter, first: date | None, last: date | None) -> Any:
    """Counts and record sums per type and status from the tallies of UTC days ``first`` .. ``last``."""
    tally = OperationTally
    conditions: list[ColumnElement[bool]] = []
    if wanted.operation_type:
        conditions.append(tally.operation_type == wanted.operation_type)
    if wanted.status:
        conditions.append(tally.status == wanted.status)
    if first is not None:
        conditions.append(tally.created_on >= first)
    if last is not None:
        conditions.append(tally.created_on <= last)
    operations = func.sum(tally.operations)
    return (
        select(
            tally.operation_type,
            tally.status,
            operations,
            func.sum(tally.total_records),
            func.sum(tally.successful_records),
            func.sum(tally.finished),
        )
        .where(*conditions)
        .group_by(tally.operation_type, tally.status)
        .having(operations > 0)  # a key whose operations all changed status or went keeps a row of zeros
    )


def _status_totals(status: str, count: int, records: int, successful: int, finished: int) -> _Totals:
    if status == OperationStatus.VALIDATED:  # dry runs: counted as operations, their rows never applied
        records = successful = 0
    return _Totals(
        operations=int(count),
        completed=int(count) if status == OperationStatus.COMPLETED else 0,
        in_progress=int(count) if status in IN_PROGRESS else 0,
        failed=int(count) if status == OperationStatus.FAILED else 0,
        records=int(records),
        successful_records=int(successful),
        finished=int(finished),
    )


@dataclass(frozen=True)
class _Durations:
    """Where the durations of the operations matching a filter are ranked: ``conditions`` select them
    in the duration indexes; ``buckets`` (bucket, operations), shortest first, count them per bucket of
    the duration tallies, or are None when the filter has days (the tallies of durations have none)."""

    conditions: list[ColumnElement[bool]]
    buckets: list[tuple[int, int]] | None

    def at(self, connection: Connection, finished: int, first: int, count: int) -> list[float]:
        """The durations of ranks ``first`` .. ``first + count - 1`` (1-based, shortest first) among the
        ``finished`` ones."""
        if self.buckets is None:
            return _walked(connection, self.conditions, finished, first, count)
        return [self._in_bucket(connection, rank) for rank in range(first, first + count)]

    def _in_bucket(self, connection: Connection, rank: int) -> float:
        """The duration of ``rank``: its bucket from the tallies, then a walk along the duration index
        within that bucket only (at most its operations), however many operations there are."""
        below = 0
        for bucket, operations in self.buckets or ():
            if rank <= below + operations:
                lowest, beyond = bucket_bounds(bucket)
                in_bucket = [*self.conditions, _seconds(connection, beyond) > OPERATION_DURATION]
                if lowest is not None:
                    in_bucket.append(_seconds(connection, lowest) <= OPERATION_DURATION)
                query = select(OPERATION_DURATION).where(*in_bucket).order_by(OPERATION_DURATION)
                return float(connection.scalars(query.offset(rank - below - 1).limit(1)).one())
            below += operations
        raise LookupError(f"rank {rank} beyond the {below} tallied durations")


def _seconds(connection: Connection, microseconds: int) -> Any:
    """``microseconds`` as seconds, typed as the duration expression is on this database, so that the
    comparison uses its index: an exact numeric on PostgreSQL; on SQLite the same float as the
    expression's (an integer divided once by a million)."""
    if connection.dialect.name == "postgresql":
        return literal(Decimal(microseconds).scaleb(-6), Numeric())
    return microseconds / 1_000_000


def _durations(connection: Connection, wanted: HistoryFilter, kind: str | None) -> _Durations:
    """The ranking of ``wanted``'s durations, of type ``kind`` (None: all types)."""
    conditions = _conditions(wanted, walking=True)
    if kind is not None:
        conditions.append(BulkOperation.operation_type == kind)
    if wanted.since or wanted.until:
        return _Durations(conditions, None)
    tally = OperationDurationTally
    operations = func.sum(tally.operations)
    query = select(tally.bucket_us, operations).group_by(tally.bucket_us).having(operations > 0)
    if kind is not None:
        query = query.where(tally.operation_type == kind)
    if wanted.status:
        query = query.where(tally.status == wanted.status)
    buckets = [
        (int(bucket), int(count)) for bucket, count in connection.execute(query.order_by(tally.bucket_us))
    ]
    return _Durations(conditions, buckets)


def _walked(
    connection: Connection, conditions: list[ColumnElement[bool]], finished: int, first: int, count: int
) -> list[float]:
    """The durations of ranks ``first`` .. ``first + count - 1`` by one walk along the duration index
    from its nearer end, for a filter with days: a median walks half the operations' index entries, a
    p95 a twentieth, and nothing is sorted. Equal durations are equal values, so which of them holds a
    rank does not matter.
    """
    query = select(OPERATION_DURATION).where(*conditions, OPERATION_DURATION.is_not(None)).limit(count)
    above = finished - (first + count - 1)
    if first - 1 <= above:
        return list(connection.scalars(query.order_by(OPERATION_DURATION).offset(first - 1)))
    return list(reversed(connection.scalars(query.order_by(OPERATION_DURATION.desc()).offset(above)).all()))


def _median_and_p95(connection: Connection, durations: _Durations, finished: int) -> dict[str, float | None]:
    """The median (the mean of the two middle values for an even count, as ``statistics.median``) and
    the nearest-rank p95 (the value at rank ceil(0.95 n)) of the durations, rounded to milliseconds."""
    if not finished:
        return {"median_s": None, "p95_s": None}
    middle = durations.at(connection, finished, (finished + 1) // 2, 2 - finished % 2)
    median = middle[0] if finished % 2 else (middle[0] + middle[1]) / 2
    (p95,) = durations.at(connection, finished, math.ceil(0.95 * finished), 1)
    return {"median_s": round(median, 3), "p95_s": round(p95, 3)}


def _summary(totals: _Totals, durations: dict[str, float | None]) -> dict[str, Any]:
    return {
        "operations": totals.operations,
        "completed": totals.completed,
        "in_progress": totals.in_progress,
        "failed": totals.failed,
        "records": totals.records,
        "successful_records": totals.successful_records,
        "success_rate": round(100 * totals.successful_records / totals.records, 2) if totals.records else 0.0,
        **durations,
    }


def operation_stats(engine: Engine, wanted: HistoryFilter | None = None) -> dict[str, Any]:
    """Totals (all, completed, in progress, failed), record success rate, durations (median, p95),
    overall and per operation type, of the operations matching ``wanted`` (``limit`` and ``before``
    ignored). Durations count the operations with both a start and a completion time.

    Computed by the database in one snapshot, no row loaded: the counts from the tallies; each median
    and p95 found in its bucket of the duration tallies and read from the duration index within it (a
    filter with days walks that index instead, checking the days in it).
    """
    wanted = wanted or HistoryFilter()
    with _snapshot(engine) as connection:
        by_type = _totals_by_type(connection, wanted)
        summaries = {kind: _type_summary(connection, wanted, kind, of) for kind, of in by_type.items()}
        overall = _Totals.of(by_type.values())
        if len(summaries) == 1:  # all the operations are of one type: its durations are theirs
            (only,) = summaries.values()
            durations = {"median_s": only["median_s"], "p95_s": only["p95_s"]}
        else:
            durations = _median_and_p95(connection, _durations(connection, wanted, None), overall.finished)
    return {"all": _summary(overall, durations), "by_type": summaries}


def _type_summary(
    connection: Connection, wanted: HistoryFilter, kind: str, totals: _Totals
) -> dict[str, Any]:
    return _summary(
        totals, _median_and_p95(connection, _durations(connection, wanted, kind), totals.finished)
    )

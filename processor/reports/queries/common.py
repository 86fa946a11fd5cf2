"""What every report query shares: the report shapes, UTC times read fast, day ranges, ward filters.

A query's ``now`` is in the wards' zone (``stream_report`` makes it so): its ``tzinfo`` is the zone whose
local days the report's date filters mean and whose local times (ISO, with their offset) it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Select,
    func,
    literal_column,
    type_coerce,
)

from processor.adapters.database.models import (
    PatientAdmission,
    Ward,
)
from processor.core.clock import day_range, is_utc

AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])

# The partial indexes of active admissions are declared ``WHERE is_active``. SQLite uses a partial index
# only when the query repeats that term as written, and SQLAlchemy renders a boolean test on SQLite as
# ``is_active = 1`` or ``is_active IS 1``, which made every report with active admissions scan all of
# them, current and past. The column is NOT NULL and holds 0 or 1, so the bare column means the same.
ADMISSION_IS_ACTIVE: ColumnElement[Any] = literal_column(f"{PatientAdmission.__tablename__}.is_active")


def utc_time(connection: Connection, column: Any) -> Any:
    """``column`` (a ``UtcDateTime``) read as a naive UTC datetime, which the database makes.

    ``UtcDateTime`` makes each value an aware UTC datetime in Python: a report reads up to a hundred
    thousand, and that conversion, with ``isoformat`` of aware values, was a fifth of its time. SQLite
    keeps naive UTC already; PostgreSQL converts in the query. ``iso`` writes a naive UTC time exactly
    as ``isoformat`` writes the aware one.
    """
    if connection.dialect.name == "postgresql":
        return func.timezone("UTC", column, type_=DateTime())
    return type_coerce(column, DateTime())


class Report(Protocol):
    """What a report writer needs: a header, then rows (a list, or a stream read once)."""

    @property
    def header(self) -> list[str]: ...

    @property
    def rows(self) -> Iterable[list[Any]]: ...


@dataclass
class ReportTable:
    """A report's header and rows, ready to write as CSV."""

    header: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReportStream:
    """A report's header and its rows, produced while they are read; read them once, connection open."""

    header: list[str]
    rows: Iterator[list[Any]]


def zone_of(now: datetime) -> tzinfo:
    """The wards' zone a query's ``now`` is in."""
    if now.tzinfo is None:
        raise ValueError("a report's time must be timezone-aware")
    return now.tzinfo


def in_days(column: Any, start: date | None, end: date | None, zone: tzinfo = UTC) -> list[Any]:
    """Conditions on ``column`` (a stored UTC time): from the start of local day ``start`` up to the end
    of local day ``end`` in ``zone`` (23 or 25 hours long when the clocks change)."""
    since, until = day_range(start, end, zone)
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def in_ward(query: AnySelect, ward: str | None) -> AnySelect:
    return query.where(Ward.code == ward) if ward else query


def percent(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def full_name(first: str, last: str) -> str:
    return f"{first} {last}".strip()


def naive_utc(moment: datetime) -> datetime:
    """An aware time as the naive UTC time ``utc_time`` columns hold."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def iso(naive_utc: datetime) -> str:
    """The ISO text of a naive UTC time, exactly as ``isoformat`` writes the same time in UTC."""
    return f"{naive_utc.isoformat()}+00:00"


class LocalTimes:
    """How a report shows the naive UTC times it reads (``utc_time``): ``iso``, the ISO text of the time
    in the wards' zone with its offset, and ``day``, its local day. In UTC, the fast forms above, with no
    conversion (a report reads up to a hundred thousand times)."""

    def __init__(self, zone: tzinfo) -> None:
        self.iso: Callable[[datetime], str] = iso
        self.day: Callable[[datetime], date] = datetime.date
        if not is_utc(zone):
            self.iso = lambda naive: naive.replace(tzinfo=UTC).astimezone(zone).isoformat()
            self.day = lambda naive: naive.replace(tzinfo=UTC).astimezone(zone).date()


def fetch(connection: Connection, query: Select[*tuple[Any, ...]]) -> Iterator[Any]:
    """The query's rows, each made as it is read: Python never holds the whole result.

    On PostgreSQL the client library receives the whole result (compactly, as text). A server-side
    cursor would keep it on the server, but it makes the planner favour plans that return the first
    rows fast, and a report reads every row: they ran up to twice as slow.
    """
    return iter(connection.execute(query))

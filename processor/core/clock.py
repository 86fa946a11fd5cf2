"""Time is a parameter: code asks a ``Clock`` for now, so tests pass a fixed one instead of patching.

Stored times are UTC. The wards' days are local days of the configured zone (``timezone``): a local
day starts at local midnight and is 23 or 25 hours long when the clocks change. The helpers here turn
local days into UTC instants, the only form the database is asked about.
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo

Clock = Callable[[], datetime]

# Names of zones that are UTC itself, so that the default zone keeps the fast paths that need no
# conversion (settings give ZoneInfo("UTC"), tests and defaults datetime.UTC).
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"})


def system_clock() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def is_utc(zone: tzinfo) -> bool:
    """Whether ``zone`` is UTC (always offset 0): its local days are UTC days."""
    return zone is UTC or str(getattr(zone, "key", "")) in _UTC_NAMES


def local_date(moment: datetime, zone: tzinfo) -> date:
    """The day ``moment`` (aware) falls on in ``zone``."""
    return moment.astimezone(zone).date()


def day_start(day: date, zone: tzinfo = UTC) -> datetime:
    """The first instant of ``day`` in ``zone``, as an aware UTC time.

    That is local midnight; where a zone's clock skips midnight (a spring change at 00:00), the instant
    of the change, when the day begins; where midnight happens twice, the first.
    """
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def day_range(
    first: date | None, last: date | None, zone: tzinfo = UTC
) -> tuple[datetime | None, datetime | None]:
    """The instants (UTC) from the start of ``first`` up to, not including, the start of the day after
    ``last``, in ``zone``: the whole of both days. None stays None (no bound)."""
    since = day_start(first, zone) if first is not None else None
    until = day_start(last + timedelta(days=1), zone) if last is not None else None
    return since, until

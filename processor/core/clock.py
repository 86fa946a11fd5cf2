"""Time is a parameter: code asks a ``Clock`` for now, so tests pass a fixed one instead of patching."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)

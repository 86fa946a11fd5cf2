"""Cell types shared by the row models: each checks its cell and fails with a stable code.

Row models validate ``present_cells(record.cells)``: cells trimmed once, empty ones left out, so that an
empty optional cell is ``None`` and an empty required one is pydantic's ``missing``. Lengths are
pydantic-core constraints and the rest are small validators: at a million rows, every Python call per
cell counts.

Errors are ``PydanticCustomError`` whose type is the wardbulk error code, or one of the few pydantic types
``row_errors`` translates, so a pydantic error maps to a ``RowError`` without guessing. Messages name the
column, never the value.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StringConstraints, ValidationError, ValidationInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from processor.core.problems import Code, RowError

EMAIL_MAX = 254
NAME_MAX = 150  # users.first_name and last_name
PHONE_MAX = 32
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
PHONE_PATTERN = re.compile(r"^[+(]?[0-9][0-9 ()./-]*(?:\s*(?:x|ext\.?)\s*[0-9]+)?$", re.IGNORECASE)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)
EARLIEST_BIRTH = date(1880, 1, 1)
EARLIEST_EVENT_YEAR = 1900  # admissions and discharges; also keeps UTC conversion in range
CODE_VALUES = {code.value for code in Code}


def fail(code: Code, message: str) -> PydanticCustomError:
    """An error whose pydantic type is the wardbulk code."""
    return PydanticCustomError(code.value, message)


def present_cells(cells: dict[str, str]) -> dict[str, str]:
    """The cells to validate: trimmed, and without the empty ones (those are absent, not ``""``)."""
    return {name: trimmed for name, cell in cells.items() if (trimmed := cell.strip())}


def max_length(limit: int) -> StringConstraints:
    """A text cell of at most ``limit`` characters (the database column's size)."""
    return StringConstraints(max_length=limit)


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > EMAIL_MAX:
        raise fail(Code.CONSTRAINT_ERROR, f"an e-mail address is at most {EMAIL_MAX} characters")
    if not EMAIL_PATTERN.match(value):
        raise fail(Code.TYPE_ERROR, "is not a valid e-mail address")
    return value.lower()


def _phone(value: str | None) -> str | None:
    if value is not None and not PHONE_PATTERN.match(value):
        raise fail(Code.TYPE_ERROR, "is not a phone number (digits, spaces, + - ( ) . allowed)")
    return value


def _zone(info: ValidationInfo) -> tzinfo:
    """The wards' time zone (``timezone``), given with the validation's context; UTC without one."""
    zone: tzinfo = (info.context or {}).get("zone") or UTC
    return zone


def _today(info: ValidationInfo) -> date:
    """The wards' today (a birth this morning is not in the future): given, or from ``now``."""
    context = info.context or {}
    if "today" in context:
        today: date = context["today"]
        return today
    now: datetime = context.get("now") or datetime.now(UTC)
    return now.astimezone(_zone(info)).date()


def _iso_date_not_future(value: Any, info: ValidationInfo) -> date | None:
    parsed = _iso_date(value)
    if parsed is None:
        return None
    if parsed > _today(info):
        raise fail(Code.CONSTRAINT_ERROR, "is in the future")
    if parsed < EARLIEST_BIRTH:
        raise fail(Code.CONSTRAINT_ERROR, f"is before {EARLIEST_BIRTH.isoformat()}")
    return parsed


def _iso_datetime_not_future(value: Any, info: ValidationInfo) -> datetime | None:
    """ISO date or date-time; without an offset it is the wards' local time (``timezone``, UTC by
    default; upstream systems are told so in the README), a date alone its local midnight. A wall time
    the clocks skip or repeat is read with the offset in force before the change (``fold=0``)."""
    if value is None:
        return None
    try:
        if not ISO_DATETIME.match(value):
            raise ValueError
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(Code.TYPE_ERROR, "must be a date-time written YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    if parsed.year < EARLIEST_EVENT_YEAR:
        raise fail(Code.CONSTRAINT_ERROR, f"is before {EARLIEST_EVENT_YEAR}")
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=_zone(info)).astimezone(UTC)
    now = (info.context or {}).get("now") or datetime.now(UTC)
    if parsed > now:
        raise fail(Code.CONSTRAINT_ERROR, "is in the future")
    return parsed


FLAG_VALUES = {
    "true": True,
    "yes": True,
    "1": True,
    "y": True,
    "false": False,
    "no": False,
    "0": False,
    "n": False,
}


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    try:
        return FLAG_VALUES[value.lower()]
    except KeyError:
        raise fail(Code.TYPE_ERROR, "must be true/false, yes/no or 1/0") from None


def one_of(values: tuple[str, ...]) -> AfterValidator:
    """A text cell restricted to ``values`` (compared lower-case); the value is returned lower-case."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() not in values:
            raise fail(Code.CONSTRAINT_ERROR, "must be one of " + ", ".join(values))
        return value.lower()

    return AfterValidator(check)


def _iso_date(value: Any) -> date | None:
    if value is None:
        return None
    try:
        if not ISO_DATE.match(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise fail(Code.TYPE_ERROR, "must be a date written YYYY-MM-DD") from None


Text = str
OptionalText = str | None
RequiredName = Annotated[str, max_length(NAME_MAX)]
RequiredEmail = Annotated[str, AfterValidator(_email)]
OptionalEmail = Annotated[str | None, AfterValidator(_email)]
OptionalPhone = Annotated[Annotated[str, max_length(PHONE_MAX)] | None, AfterValidator(_phone)]
OptionalBirthDate = Annotated[date | None, BeforeValidator(_iso_date_not_future)]
OptionalPastDateTime = Annotated[datetime | None, BeforeValidator(_iso_datetime_not_future)]
OptionalFlag = Annotated[bool | None, BeforeValidator(_flag)]
OptionalDate = Annotated[date | None, BeforeValidator(_iso_date)]
RequiredCode = Annotated[str, max_length(64)]
RequiredText = Annotated[str, max_length(200)]
OptionalLongText = Annotated[str, max_length(4000)] | None


def _translated(error: ErrorDetails) -> tuple[Code, str]:
    """The wardbulk code and message of one pydantic error."""
    kind = error["type"]
    if kind in CODE_VALUES:
        return Code(kind), error["msg"]
    if kind in ("missing", "string_too_short"):
        return Code.CONSTRAINT_ERROR, "a value is required"
    if kind == "string_too_long":
        return Code.CONSTRAINT_ERROR, f"is longer than {error.get('ctx', {}).get('max_length')} characters"
    return Code.TYPE_ERROR, error["msg"]


def row_errors(exc: ValidationError, line: int, cells: dict[str, str]) -> list[RowError]:
    """Translate a row model's validation error into RowErrors, one per failing column."""
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        column = str(error["loc"][0]) if error["loc"] else ""
        code, message = _translated(error)
        message = f"{column} {message}" if column else message
        errors.append(RowError(line, column, code, message, cells.get(column, "")))
    return errors

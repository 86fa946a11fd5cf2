"""import_patients' fast path: a chunk's rows checked column by column, the row model only when in doubt.

The row model (``rules.PatientRow`` and ``rules._checked_fields``) is the reference: it alone says what
is wrong with a row, with which code and message. ``certain_patients`` applies the same rules with the
same compiled patterns, functions and limits, but to whole columns at once (``map`` over C functions,
chunk-wide ``min``/``max`` tests), so that a row that passes costs no pydantic call and no Python frame
per cell: at a million rows the model's per-row price was most of an import's checking time.

Contract (pinned by a differential test against the model): for a row it returns a ``NewPatient`` for,
the row model accepts the row too and ``ImportPatientsRun`` builds the identical ``NewPatient``. For any
other row (a record with reading errors, a value out of bounds, anything it is not certain of) it
returns ``None`` and the row goes through the model. It decides nothing about repeats in the file or
clashes with the database: those checks follow for every row, whichever path it took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date

from processor.core.column_checks import column_of, failing, not_unicode, outside
from processor.core.csv_reading import Record
from processor.core.fields import (
    EARLIEST_BIRTH,
    EMAIL_MAX,
    EMAIL_PATTERN,
    ISO_DATE,
    NAME_MAX,
    PHONE_MAX,
    PHONE_PATTERN,
)
from processor.core.operation_kinds import OperationType, format_of
from processor.operations.import_patients.ports import NewPatient

# Limits the row model shares (``rules`` reads them from here; the rest are ``fields``').
CAREGIVER_NAME_MAX = 300
PATIENT_ID_MAX = 64
GENDERS = ("M", "F", "O", "U")
COLUMNS = format_of(OperationType.IMPORT_PATIENTS).columns  # the columns of a file that is not an upsert


def certain_patients(
    records: Sequence[Record], today: date, mrn_for_line: Callable[[int], str]
) -> list[NewPatient | None]:
    """Per record, its ``NewPatient`` when the row model certainly accepts it, else ``None``.

    ``today`` is the wards' today (a later date of birth is in the future); ``mrn_for_line`` gives the
    identifier of a row without patient_id (``rules.generated_patient_id`` for the file's operation).
    """
    if not records:
        return []
    column = _stripped_columns(records)
    doubtful = {index for index, record in enumerate(records) if record.errors}
    for values in column.values():
        doubtful |= not_unicode(values)
    doubtful |= outside(column["first_name"], 1, NAME_MAX)
    doubtful |= outside(column["last_name"], 1, NAME_MAX)
    doubtful |= outside(column["patient_id"], 0, PATIENT_ID_MAX)
    doubtful |= outside(column["caregiver_name"], 0, CAREGIVER_NAME_MAX)
    doubtful |= _doubtful_emails(column["email"], required=True)
    doubtful |= _doubtful_emails(column["caregiver_email"], required=False)
    doubtful |= _doubtful_phones(column["phone"]) | _doubtful_phones(column["caregiver_phone"])
    doubtful |= _caregiver_without_name(column)
    births, unsure_births = _birth_dates(column["date_of_birth"], today)
    genders, unsure_genders = _genders(column["gender"])
    doubtful |= unsure_births | unsure_genders
    lines = [record.line for record in records]
    patients = map(
        NewPatient,
        [
            patient_id or mrn_for_line(line)
            for patient_id, line in zip(column["patient_id"], lines, strict=True)
        ],
        column["first_name"],
        column["last_name"],
        map(str.lower, column["email"]),
        _or_none(column["phone"]),
        births,
        genders,
        _or_none(column["caregiver_name"]),
        _or_none(map(str.lower, column["caregiver_email"])),
        _or_none(column["caregiver_phone"]),
    )
    return [None if index in doubtful else patient for index, patient in enumerate(patients)]


def _stripped_columns(records: Sequence[Record]) -> dict[str, list[str]]:
    """Each column's cells, trimmed as ``fields.present_cells`` trims them; a cell a record lacks is an
    empty cell (the model sees neither as a value)."""
    cells = [record.cells for record in records]
    return {name: list(map(str.strip, column_of(cells, name))) for name in COLUMNS}


def _doubtful_emails(values: list[str], required: bool) -> set[int]:
    """``fields._email``'s rules: at most ``EMAIL_MAX`` characters, ``EMAIL_PATTERN``."""
    return outside(values, 1 if required else 0, EMAIL_MAX) | failing(values, EMAIL_PATTERN, required)


def _doubtful_phones(values: list[str]) -> set[int]:
    """``fields.OptionalPhone``'s rules: at most ``PHONE_MAX`` characters, ``PHONE_PATTERN``."""
    return outside(values, 0, PHONE_MAX) | failing(values, PHONE_PATTERN, required=False)


def _caregiver_without_name(column: dict[str, list[str]]) -> set[int]:
    """The rows with a caregiver e-mail or phone but no caregiver name (``rules._checked_fields``)."""
    rows = zip(column["caregiver_name"], column["caregiver_email"], column["caregiver_phone"], strict=True)
    return {index for index, (name, email, phone) in enumerate(rows) if not name and (email or phone)}


def _birth_dates(values: list[str], today: date) -> tuple[list[date | None], set[int]]:
    """``fields._iso_date_not_future``'s dates: ``ISO_DATE``, a real calendar day, from ``EARLIEST_BIRTH``
    to ``today``. The rows where one of those fails are doubtful (their payload is never used)."""
    days = list(map(_birth_date, values))
    unsure = {
        index for index, day in enumerate(days) if day is not None and not EARLIEST_BIRTH <= day <= today
    }
    return days, unsure


def _birth_date(value: str) -> date | None:
    """The cell's day; ``None`` for an empty cell; ``date.min``, which no birth range admits, for a cell
    that is not a day written YYYY-MM-DD."""
    if not value:
        return None
    if not ISO_DATE.match(value):
        return date.min
    try:
        return date.fromisoformat(value)
    except ValueError:
        return date.min


def _genders(values: list[str]) -> tuple[list[str | None], set[int]]:
    """Genders upper-cased, as ``ImportPatientsRun`` stores them; a value outside ``GENDERS`` is doubtful."""
    upper = [value.upper() or None for value in values]
    unsure = {index for index, gender in enumerate(upper) if gender is not None and gender not in GENDERS}
    return upper, unsure


def _or_none(values: Iterable[str]) -> list[str | None]:
    """Empty cells as ``None``, as the model leaves an absent optional value."""
    return [value or None for value in values]

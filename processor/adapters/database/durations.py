"""``BulkOperation.duration`` as SQL: ``OperationDuration(started_at, completed_at)`` compiles to the same
float on SQLite and PostgreSQL, so that the history statistics rank durations in the database, through
indexes on this very expression (``models.OPERATION_DURATION``, migration 0005).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class OperationDuration(FunctionElement[float]):
    """``BulkOperation.duration`` computed by the database: the same float, NULL unless both ``started_at``
    and ``completed_at`` are set. The history statistics sort and rank durations with it, through the two
    indexes below; SQLite uses an index on an expression only for the very same expression, so migration
    0005 creates them with this exact SQL (``tests/test_history_scale.py`` checks that they are used).
    """

    type = Float(asdecimal=False)
    inherit_cache = True
    name = "operation_duration"


@compiles(OperationDuration, "sqlite")
def _sqlite_duration(element: OperationDuration, compiler: SQLCompiler, **kw: Any) -> str:
    """Exact microseconds as integers, then divided once (as ``timedelta.total_seconds`` does).

    UtcDateTime stores ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC, no zone). Whole seconds come from the first 19
    characters only: given a fraction, SQLite rounds to milliseconds first (59.9996 s becomes the next
    minute). The fraction is padded, so a value written without one (by hand, or a migration) reads as 0.
    """
    started, completed = (compiler.process(argument, **kw) for argument in element.clauses)

    def whole_seconds(value: str) -> str:
        return f"CAST(strftime('%s', substr({value}, 1, 19)) AS INTEGER)"

    def microseconds(value: str) -> str:
        return f"CAST(substr(substr({value}, 21) || '000000', 1, 6) AS INTEGER)"

    seconds = f"{whole_seconds(completed)} - {whole_seconds(started)}"
    return f"((({seconds}) * 1000000 + {microseconds(completed)} - {microseconds(started)}) / 1000000.0)"


@compiles(OperationDuration)
def _postgresql_duration(element: OperationDuration, compiler: SQLCompiler, **kw: Any) -> str:
    """PostgreSQL (and the standard): the interval's exact seconds (numeric), read as the nearest float,
    as the Python property. Written as PostgreSQL prints the index back (no parentheses around the
    subtraction), so that Alembic finds the model's index and the migrated one alike."""
    started, completed = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"EXTRACT(epoch FROM {completed} - {started})"

"""Bulk writes at the speed the database can take: keys reserved up front, rows sent as tuples.

SQLAlchemy's ``insert().returning(..., sort_by_parameter_order=True)`` is correct but, on SQLite, runs
one statement per row; ORM objects and dicts cost more again. Here:

- ``reserve_ids`` hands out primary keys for a chunk before it is inserted, so that child rows (a
  Patient's User, a Caregiver's Patient) can be linked without reading keys back. On SQLite the caller
  holds the write lock (the unit of work begins IMMEDIATE), so ``max(id) + 1 ...`` is not raced; on
  PostgreSQL the keys come from the column's own sequence, which is safe under any concurrency.
- ``insert_rows`` sends tuples in ``columns`` order: one ``executemany`` on SQLite, binary ``COPY``
  on PostgreSQL. Values go through the columns' own SQLAlchemy type processing (UTC times, dates), so what
  is stored is exactly what a Core insert would store.

Both run on the caller's connection, inside its transaction: a failure rolls back with the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Connection,
    SQLColumnExpression,
    String,
    Subquery,
    Table,
    any_,
    bindparam,
    func,
    select,
    text,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

from processor.adapters.database.models import Base
from processor.errors import ConcurrentChange

Processor = Callable[[Any], Any]
T = TypeVar("T")


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def reserve_ids(connection: Connection, model: type[Base], count: int) -> list[int]:
    """``count`` fresh primary keys for ``model``'s table (the caller inserts them in this transaction)."""
    table = _table(model)
    if count == 0:
        return []
    if connection.dialect.name == "sqlite":
        highest = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
        return list(range(highest + 1, highest + 1 + count))
    # One row holding the array: fetching thousands of one-value rows costs more than drawing them.
    query = text(
        "SELECT array_agg(nextval(pg_get_serial_sequence(:table, 'id'))) FROM generate_series(1, :count)"
    )
    return list(connection.execute(query, {"table": table.name, "count": count}).scalar_one())


def is_among(
    connection: Connection, column: SQLColumnExpression[T], values: Collection[T]
) -> ColumnElement[bool]:
    """``column IN values`` as one bound parameter, whatever the number of values.

    A plain ``in_()`` binds a parameter per value, and compiling thousands of them for every chunk costs
    more than the lookup itself. SQLite gets a JSON array read by ``json_each``, PostgreSQL an array.
    """
    if connection.dialect.name == "sqlite":
        return column.in_(select(_json_array(list(values)).c.value))
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))  # type: ignore[attr-defined]


def expect_changed(
    connection: Connection, statement: Any, expected: int, parameters: list[dict[str, Any]] | None = None
) -> None:
    """Run a conditional update (an executemany with ``parameters``); fewer rows changed than expected
    means someone got there first: ``ConcurrentChange``."""
    changed = connection.execute(statement, parameters).rowcount
    if changed != expected:
        raise ConcurrentChange(f"{expected - changed} rows changed since validation")


def values_table(
    connection: Connection, columns: Mapping[str, TypeEngine[Any]], rows: list[tuple[Any, ...]]
) -> Subquery:
    """``rows`` as a table with ``columns``, sent as one parameter per column, to join in one statement.

    ``UPDATE ... FROM`` this table changes a whole chunk in one statement, where an ``executemany``
    would run the statement again for each row: twice as fast on SQLite. SQLite reads the rows from a
    JSON array, PostgreSQL from ``unnest`` of one array per column.
    """
    if connection.dialect.name == "sqlite":
        source = _json_array(_bound(connection, list(columns.values()), rows))
        return select(
            *(
                type_coerce(func.json_extract(source.c.value, f"$[{index}]"), type_).label(name)
                for index, (name, type_) in enumerate(columns.items())
            )
        ).subquery()
    arrays = [
        bindparam(None, [row[index] for row in rows], type_=ARRAY(type_))
        for index, type_ in enumerate(columns.values())
    ]
    return select(func.unnest(*arrays).table_valued(*columns).render_derived()).subquery()


def _bound(
    connection: Connection, types: list[TypeEngine[Any]], rows: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """SQLite: the rows' values as the columns' types store them (a date as its ISO text), so that
    JSON can carry them and they compare equal to what is stored."""
    dialect = connection.dialect
    processors = [
        (i, p) for i, type_ in enumerate(types) if (p := type_.dialect_impl(dialect).bind_processor(dialect))
    ]
    return [_apply(row, processors) for row in rows] if processors else rows


def _json_array(values: list[Any]) -> TableValuedAlias:
    """SQLite: ``values`` as one JSON parameter, read back row by row (``value``) by ``json_each``."""
    return func.json_each(bindparam(None, json.dumps(values), type_=String)).table_valued("value")


def insert_rows(
    connection: Connection,
    model: type[Base],
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    shared: Mapping[str, Any] | None = None,
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``model``'s table, each completed with the
    ``shared`` values every row has in common (a chunk's ``created_at``, say), converted only once.

    Failures raise SQLAlchemy's exceptions on both databases (``IntegrityError`` for a constraint),
    without the row values: they may be patient data.
    """
    table = _table(model)
    shared = shared or {}
    processed = _processed(connection, [table.c[name] for name in columns], rows)
    tail = tuple(_converted_once(connection, table.c[name], value) for name, value in shared.items())
    completed = (row + tail for row in processed) if tail else processed
    names = [*columns, *shared]
    if connection.dialect.name == "sqlite":
        _executemany(connection, table, names, completed)
    else:
        _copy(connection, table, names, completed)


def _bind_processor(connection: Connection, column: Column[Any]) -> Processor | None:
    """The column's conversion of a Python value into what the driver takes (None when there is none)."""
    return column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)


def _converted_once(connection: Connection, column: Column[Any], value: Any) -> Any:
    processor = _bind_processor(connection, column)
    return value if value is None or processor is None else processor(value)


def _processed(
    connection: Connection, columns: list[Column[Any]], rows: Iterable[tuple[Any, ...]]
) -> Iterable[tuple[Any, ...]]:
    processors = [
        (index, processor)
        for index, column in enumerate(columns)
        if (processor := _bind_processor(connection, column))
    ]
    if not processors:
        return rows  # the common case: text and numbers go to the driver as they are
    return (_apply(row, processors) for row in rows)


def _apply(row: tuple[Any, ...], processors: Sequence[tuple[int, Processor]]) -> tuple[Any, ...]:
    values = list(row)
    for index, processor in processors:
        if values[index] is not None:
            values[index] = processor(values[index])
    return tuple(values)


def _executemany(
    connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    parameters = list(rows)
    if not parameters:
        return  # an empty list would run the statement once, without parameters
    names = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", parameters)  # noqa: S608


def _copy(
    connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """PostgreSQL: ``COPY ... FROM STDIN`` in the binary format, which the server stores without
    parsing text (and psycopg writes without quoting it): the columns' types come from the catalogue,
    so every value is dumped as exactly the column's type."""
    from psycopg import errors as pg_errors  # noqa: PLC0415 (50 ms of start-up every SQLite command spares)

    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    try:
        with driver_connection.cursor() as cursor:
            types = _column_types(cursor, table.name, columns)
            with cursor.copy(statement) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
    except pg_errors.Error as exc:
        # As SQLAlchemy would raise it (IntegrityError, OperationalError, ...), so that the pipeline's
        # retry rules apply; no parameters, and the driver's message stays in ``orig``, out of logs.
        raise DBAPIError.instance(
            statement, None, exc, pg_errors.Error, hide_parameters=True, dialect=connection.dialect
        ) from None


def _column_types(cursor: Any, table: str, columns: Sequence[str]) -> list[int]:
    """The type oids of ``table``'s ``columns``, in their order, as the catalogue has them (read each
    time: a migration may change them, and one catalogue query per chunk costs nothing next to it)."""
    query = (
        "SELECT attname, atttypid FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
    )
    oids = dict(cursor.execute(query, (table,)).fetchall())
    return [oids[name] for name in columns]

"""One transaction per file: ``with UnitOfWork(engine) as uow: ...; uow.commit()``.

Whatever SQLAlchemy raises in the block, on entering or on commit leaves as the project's
``processor.errors.DatabaseError`` (the driver's error as its cause).

The unit of work holds the file's connection and transaction, and the one store every operation may
share, ``uow.reports`` (report files written in the transaction). Each operation's own store is built
on it by the operation's room (``Operation.stores_on(uow)``), so that adding an operation type never
touches this module. It rolls back unless committed. On SQLite the transaction begins IMMEDIATE: the
writer takes the lock up front instead of failing on a lock upgrade halfway through a file, and has a
wide page cache for a big file's inserts (``engine.WIDE_CACHE``).

Phase 1 looks up outside the file's transaction: ``with ReadOnlyUnitOfWork(engine) as lookups: ...``
gives a plain connection (``lookups.connection``), on which a room builds its store typed read-only
(``Operation.lookups_on``); it is closed without a commit, so nothing done on it could stay.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError

from processor.adapters.database.engine import BEGIN_IMMEDIATE, WIDE_CACHE
from processor.adapters.database.translation import database_errors_translated, translated
from processor.core.report_request import ReportRequest, ReportWriter


class ReportWriting(Protocol):
    """How a unit of work gets its ``reports`` store: ``processor.reports.store.ReportOutput`` (where
    reports go, the clock, the owner token), which builds the writer on the unit of work's connection.

    A protocol here because report files are written by ``processor.reports``, a layer above this one.
    """

    def writer_on(self, connection: Connection) -> ReportWriter:
        """The report writer on ``connection``, inside its transaction."""
        ...


class NoReports:
    """The ``reports`` store of a unit of work built without a report writer: any report it is asked for
    is a wiring mistake, so it says so instead of writing nothing."""

    def write_report(self, request: ReportRequest, file_name: str) -> int:
        raise RuntimeError("this unit of work was built without a report writer (UnitOfWork(reports=...))")


class UnitOfWork:
    """A connection, its transaction, and the ``reports`` store.

    ``reports`` configures the ``reports`` store; without it, writing a report raises.
    """

    connection: Connection
    reports: ReportWriter  # built on entering, on the transaction's connection

    def __init__(self, engine: Engine, *, reports: ReportWriting | None = None) -> None:
        self._engine = engine
        self._reports = reports
        self._transaction: RootTransaction | None = None

    def __enter__(self) -> UnitOfWork:
        with database_errors_translated(self._engine):
            self.connection = self._engine.connect().execution_options(
                **{BEGIN_IMMEDIATE: True, WIDE_CACHE: True}
            )
            self._transaction = self.connection.begin()
        self.reports = self._reports.writer_on(self.connection) if self._reports is not None else NoReports()
        return self

    def commit(self) -> None:
        assert self._transaction is not None
        with database_errors_translated(self._engine):
            self._transaction.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back unless committed; a DB-API error the block raised leaves as the project's."""
        try:
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
            self.connection.close()
        finally:
            if isinstance(exc, DBAPIError):
                raise translated(exc, self._engine.url) from exc


class ReadOnlyUnitOfWork:
    """Phase 1's connection, outside any file's transaction; closed without a commit.

    The pipeline opens one per chunk and builds the operation's lookups on it.
    """

    connection: Connection

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __enter__(self) -> ReadOnlyUnitOfWork:
        with database_errors_translated(self._engine):
            self.connection = self._engine.connect()
        return self

    def __exit__(self, _type: object, exc: BaseException | None, _traceback: object) -> None:
        """Close the connection; a DB-API error the block raised leaves as the project's."""
        self.connection.close()
        if isinstance(exc, DBAPIError):
            raise translated(exc, self._engine.url) from exc

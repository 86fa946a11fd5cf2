"""One transaction per file: ``with UnitOfWork(engine) as uow: ...; uow.commit()``.

Whatever SQLAlchemy raises in the block, on entering or on commit leaves as the project's
``processor.errors.DatabaseError`` (the driver's error as its cause).

The unit of work holds the file's connection and transaction, and the named stores on them
(``uow.patients``, ``uow.admissions``, ``uow.beds``, ``uow.reports``: an ``operations.ports.Stores``).
It rolls back unless committed. On SQLite the transaction begins IMMEDIATE: the writer takes the lock up
front instead of failing on a lock upgrade halfway through a file.

Phase 1 looks up outside the file's transaction: ``with ReadOnlyUnitOfWork(engine) as lookups: ...``
gives the same named stores, typed read-only (an ``operations.ports.Lookups``), on a plain connection.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError

from processor.adapters.database.engine import BEGIN_IMMEDIATE
from processor.adapters.database.stores import SqlAdmissionStore, SqlBedRegistry, SqlPatientStore, SqlStores
from processor.adapters.database.translation import database_errors_translated, translated
from processor.operations.ports import AdmissionLookups, BedRegistryLookups, PatientLookups, ReportWriter


class ReportWriting(Protocol):
    """How a unit of work gets its ``reports`` store: ``processor.reports.store.ReportOutput`` (where
    reports go, the clock, the owner token), which builds the writer on the unit of work's connection.

    A protocol here because report files are written by ``processor.reports``, a layer above this one.
    """

    def writer_on(self, connection: Connection) -> ReportWriter:
        """The report writer on ``connection``, inside its transaction."""
        ...


class UnitOfWork:
    """A connection, its transaction, and the named stores that operations write through.

    ``reports`` configures the ``reports`` store; without it, writing a report raises.
    """

    connection: Connection
    _stores: SqlStores  # the named stores below, built on entering

    def __init__(self, engine: Engine, *, reports: ReportWriting | None = None) -> None:
        self._engine = engine
        self._reports = reports
        self._transaction: RootTransaction | None = None

    @property
    def patients(self) -> SqlPatientStore:
        return self._stores.patients

    @property
    def admissions(self) -> SqlAdmissionStore:
        return self._stores.admissions

    @property
    def beds(self) -> SqlBedRegistry:
        return self._stores.beds

    @property
    def reports(self) -> ReportWriter:
        return self._stores.reports

    def __enter__(self) -> UnitOfWork:
        with database_errors_translated(self._engine):
            self.connection = self._engine.connect().execution_options(**{BEGIN_IMMEDIATE: True})
            self._transaction = self.connection.begin()
        self._stores = self._stores_on(self.connection)
        return self

    def _stores_on(self, connection: Connection) -> SqlStores:
        writer = self._reports.writer_on(connection) if self._reports is not None else None
        return SqlStores(connection, writer)

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
    """Phase 1's lookups, on a plain connection outside any file's transaction.

    Its stores are typed as lookups only, so validation cannot write through them; and the connection
    is closed without a commit, so nothing done on it could stay. The pipeline opens one per chunk.
    """

    connection: Connection
    patients: PatientLookups
    admissions: AdmissionLookups
    beds: BedRegistryLookups

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __enter__(self) -> ReadOnlyUnitOfWork:
        with database_errors_translated(self._engine):
            self.connection = self._engine.connect()
        stores = SqlStores(self.connection)
        self.patients, self.admissions, self.beds = stores.patients, stores.admissions, stores.beds
        return self

    def __exit__(self, _type: object, exc: BaseException | None, _traceback: object) -> None:
        """Close the connection; a DB-API error the block raised leaves as the project's."""
        self.connection.close()
        if isinstance(exc, DBAPIError):
            raise translated(exc, self._engine.url) from exc

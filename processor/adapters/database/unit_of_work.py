"""One transaction per file: ``with UnitOfWork(engine) as uow: ...; uow.commit()``.

Rolls back unless committed. On SQLite the transaction begins IMMEDIATE: the writer takes the lock up
front instead of failing on a lock upgrade halfway through a file.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine, RootTransaction

from processor.adapters.database.engine import BEGIN_IMMEDIATE
from processor.adapters.database.stores import SqlWardStore


class UnitOfWork:
    """A connection, its transaction, and the stores that operations write through."""

    connection: Connection
    store: SqlWardStore

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._transaction: RootTransaction | None = None

    def __enter__(self) -> UnitOfWork:
        self.connection = self._engine.connect().execution_options(**{BEGIN_IMMEDIATE: True})
        self._transaction = self.connection.begin()
        self.store = SqlWardStore(self.connection)
        return self

    def commit(self) -> None:
        assert self._transaction is not None
        self._transaction.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.rollback()
        self.connection.close()

"""One transaction per file: ``with UnitOfWork(engine) as uow: ...; uow.commit()``.

Rolls back unless committed. On SQLite the transaction begins IMMEDIATE: the writer takes the lock up
front instead of failing on a lock upgrade halfway through a file.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, RootTransaction

from processor.adapters.database.engine import BEGIN_IMMEDIATE
from processor.adapters.database.stores import SqlWardStore


class UnitOfWork:
    """A connection, its transaction, and the stores that operations write through."""

    connection: Connection
    store: Any  # what ``store_factory`` builds; SqlWardStore by default

    def __init__(self, engine: Engine, store_factory: Callable[[Connection], Any] = SqlWardStore) -> None:
        self._engine = engine
        self._store_factory = store_factory
        self._transaction: RootTransaction | None = None

    def __enter__(self) -> UnitOfWork:
        self.connection = self._engine.connect().execution_options(**{BEGIN_IMMEDIATE: True})
        self._transaction = self.connection.begin()
        self.store = self._store_factory(self.connection)
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

"""sync_beds: upsert the ward and bed registry and beds' maintenance status.

The room of sync_beds: its descriptor is ``core.operation_kinds.SYNC_BEDS``; ``rules`` holds its row model
and checks (pure), ``ports`` the payload and the store they need, ``sql`` that store in SQL.
``processor.operations.registry`` finds ``OPERATION`` here.
"""

from __future__ import annotations

from sqlalchemy import Connection

from processor.adapters.database.unit_of_work import UnitOfWork
from processor.core.operation_kinds import SYNC_BEDS
from processor.operations.base import Described, RunContext
from processor.operations.sync_beds.ports import BedRegistryLookups, BedRegistryStore
from processor.operations.sync_beds.rules import SyncBedsRun
from processor.operations.sync_beds.sql import SqlBedRegistry


class SyncBeds(Described):
    """The sync_beds operation type."""

    kind = SYNC_BEDS
    created_columns = ()

    def start(self, context: RunContext) -> SyncBedsRun:
        return SyncBedsRun(context)

    def lookups_on(self, connection: Connection) -> BedRegistryLookups:
        return SqlBedRegistry(connection)

    def stores_on(self, uow: UnitOfWork) -> BedRegistryStore:
        return SqlBedRegistry(uow.connection)


OPERATION = SyncBeds()

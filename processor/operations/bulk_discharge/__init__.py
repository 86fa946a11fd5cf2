"""bulk_discharge: discharge each admitted patient (a PatientDischarge; the bed is released).

The room of bulk_discharge: its descriptor is ``core.operation_kinds.BULK_DISCHARGE``; ``rules`` holds its
row model and checks (pure), ``ports`` the payload and the store they need, ``sql`` that store in SQL.
``processor.operations.registry`` finds ``OPERATION`` here.
"""

from __future__ import annotations

from sqlalchemy import Connection

from processor.adapters.database.unit_of_work import UnitOfWork
from processor.core.operation_kinds import BULK_DISCHARGE
from processor.operations.base import Described, RunContext
from processor.operations.bulk_discharge.ports import DischargeLookups, DischargeStore
from processor.operations.bulk_discharge.rules import BulkDischargeRun
from processor.operations.bulk_discharge.sql import SqlDischargeStore


class BulkDischarge(Described):
    """The bulk_discharge operation type."""

    kind = BULK_DISCHARGE
    created_columns = ()

    def start(self, context: RunContext) -> BulkDischargeRun:
        return BulkDischargeRun(context)

    def lookups_on(self, connection: Connection) -> DischargeLookups:
        return SqlDischargeStore(connection)

    def stores_on(self, uow: UnitOfWork) -> DischargeStore:
        return SqlDischargeStore(uow.connection)


OPERATION = BulkDischarge()

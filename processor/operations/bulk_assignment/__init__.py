"""bulk_assignment: admit each patient to a bed (a PatientAdmission; the bed becomes occupied).

The room of bulk_assignment: its descriptor is ``core.operation_kinds.BULK_ASSIGNMENT``; ``rules`` holds
its row model and checks (pure), ``ports`` the payload and the store they need, ``sql`` that store in SQL.
``processor.operations.registry`` finds ``OPERATION`` here.
"""

from __future__ import annotations

from sqlalchemy import Connection

from processor.adapters.database.unit_of_work import UnitOfWork
from processor.core.operation_kinds import BULK_ASSIGNMENT
from processor.operations.base import Described, RunContext
from processor.operations.bulk_assignment.ports import AssignmentLookups, AssignmentStore
from processor.operations.bulk_assignment.rules import BulkAssignmentRun
from processor.operations.bulk_assignment.sql import SqlAssignmentStore


class BulkAssignment(Described):
    """The bulk_assignment operation type."""

    kind = BULK_ASSIGNMENT
    created_columns = ()

    def start(self, context: RunContext) -> BulkAssignmentRun:
        return BulkAssignmentRun(context)

    def lookups_on(self, connection: Connection) -> AssignmentLookups:
        return SqlAssignmentStore(connection)

    def stores_on(self, uow: UnitOfWork) -> AssignmentStore:
        return SqlAssignmentStore(uow.connection)


OPERATION = BulkAssignment()

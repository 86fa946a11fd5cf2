"""transfer_patients: move each admitted patient to another available bed (HL7 ADT A02).

The room of transfer_patients: its descriptor is ``core.operation_kinds.TRANSFER_PATIENTS``; ``rules``
holds its row model and checks (pure), ``ports`` the payload and the store they need, ``sql`` that store
in SQL, ``tables`` the table it adds. ``processor.operations.registry`` finds ``OPERATION`` here.
"""

from __future__ import annotations

from sqlalchemy import Connection

from processor.adapters.database.unit_of_work import UnitOfWork
from processor.core.operation_kinds import TRANSFER_PATIENTS
from processor.operations.base import Described, RunContext
from processor.operations.transfer_patients.ports import TransferLookups, TransferStore
from processor.operations.transfer_patients.rules import TransferCode, TransferPatientsRun
from processor.operations.transfer_patients.sql import SqlTransferStore


class TransferPatients(Described):
    """The transfer_patients operation type."""

    kind = TRANSFER_PATIENTS
    own_codes = tuple(TransferCode)
    created_columns = ()

    def start(self, context: RunContext) -> TransferPatientsRun:
        return TransferPatientsRun(context)

    def lookups_on(self, connection: Connection) -> TransferLookups:
        return SqlTransferStore(connection)

    def stores_on(self, uow: UnitOfWork) -> TransferStore:
        return SqlTransferStore(uow.connection)


OPERATION = TransferPatients()

"""import_patients: each row creates a User and a Patient (and a Caregiver when one is named).

The room of import_patients: its descriptor is ``core.operation_kinds.IMPORT_PATIENTS``; ``rules`` holds
its row model and checks (pure), ``ports`` the payload and the store they need, ``sql`` that store in SQL.
``processor.operations.registry`` finds ``OPERATION`` here.
"""

from __future__ import annotations

from sqlalchemy import Connection

from processor.adapters.database.unit_of_work import UnitOfWork
from processor.core.operation_kinds import IMPORT_PATIENTS
from processor.operations.base import Described, RunContext
from processor.operations.import_patients.changes import PatientCode
from processor.operations.import_patients.ports import PatientImportStore, PatientLookups
from processor.operations.import_patients.rules import ImportPatientsRun
from processor.operations.import_patients.sql import SqlPatientStore


class ImportPatients(Described):
    """The import_patients operation type."""

    kind = IMPORT_PATIENTS
    created_columns = ("assigned_patient_id", "change")
    own_codes = tuple(PatientCode)

    def start(self, context: RunContext) -> ImportPatientsRun:
        return ImportPatientsRun(context)

    def lookups_on(self, connection: Connection) -> PatientLookups:
        return SqlPatientStore(connection)

    def stores_on(self, uow: UnitOfWork) -> PatientImportStore:
        return SqlPatientStore(uow.connection)


OPERATION = ImportPatients()

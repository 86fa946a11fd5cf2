"""The unit of work on a real database: the operations' stores built on its one transaction, a read-only
counterpart for validation, and a report writer built from its configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from processor.adapters.database import operation_records as records
from processor.adapters.database.demo import seed_demo_data
from processor.adapters.database.engine import BEGIN_IMMEDIATE, WRITER_CACHE_KIB
from processor.adapters.database.models import Patient
from processor.adapters.database.unit_of_work import ReadOnlyUnitOfWork, UnitOfWork
from processor.core.report_request import ReportRequest, ReportType
from processor.operations.base import OperationRun, RunContext
from processor.operations.bulk_assignment import BulkAssignment
from processor.operations.import_patients import ImportPatients
from processor.operations.registry import Operation
from processor.reports.store import ReportOutput
from tests.conftest import Database
from tests.fakes import NOW, payloads, records_of

IMPORT, ASSIGNMENT = ImportPatients(), BulkAssignment()


@pytest.fixture
def ward(database: Database) -> Database:
    with database.engine.begin() as connection:
        seed_demo_data(connection, lambda: NOW)
    return database


def start(database: Database, operation: Operation) -> OperationRun[Any, Any]:
    """A run of ``operation`` under a registered BulkOperation (the rows it writes refer to it)."""
    new = records.NewOperation(operation.operation_type, "f.csv", None, "tester", "host:1")
    return operation.start(RunContext(records.register(database.engine, new, NOW), NOW))


def patients(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Patient)).scalar_one())


def test_an_operation_validates_on_lookups_and_applies_through_the_unit_of_work(ward: Database) -> None:
    """The pipeline's two calls: ``run.validate(chunk, operation.lookups_on(connection))``, then
    ``run.apply(payloads, operation.stores_on(uow))``."""
    run = start(ward, IMPORT)
    with ReadOnlyUnitOfWork(ward.engine) as lookups:
        outcomes = run.validate(
            records_of(IMPORT, "first_name,last_name,email\nA,A,a@example.org\n"),
            IMPORT.lookups_on(lookups.connection),
        )
    with UnitOfWork(ward.engine) as uow:
        assert run.apply(payloads(outcomes), IMPORT.stores_on(uow)) == []
        uow.commit()
    assert patients(ward) == 1


def test_the_operations_stores_share_the_one_transaction_and_roll_back_together(ward: Database) -> None:
    """A patient inserted through import_patients' store is admitted through bulk_assignment's before the
    commit; without the commit neither stays."""
    importing, assigning = start(ward, IMPORT), start(ward, ASSIGNMENT)
    with UnitOfWork(ward.engine) as uow:
        patient_store, admission_store = IMPORT.stores_on(uow), ASSIGNMENT.stores_on(uow)
        patient = records_of(IMPORT, "first_name,last_name,email,patient_id\nA,A,a@example.org,001\n")
        importing.apply(payloads(importing.validate(patient, patient_store)), patient_store)
        admission = records_of(ASSIGNMENT, "patient_id,bed_id,reason\n001,CARD-01,r\n")
        assigning.apply(payloads(assigning.validate(admission, admission_store)), admission_store)
        assert admission_store.beds_by_code(["CARD-01"])["CARD-01"].status == "occupied"
    assert patients(ward) == 0
    with ReadOnlyUnitOfWork(ward.engine) as lookups:
        beds = ASSIGNMENT.lookups_on(lookups.connection)
        assert beds.beds_by_code(["CARD-01"])["CARD-01"].status == "available"


def test_a_unit_of_work_without_report_configuration_refuses_to_write_a_report(ward: Database) -> None:
    with UnitOfWork(ward.engine) as uow, pytest.raises(RuntimeError, match="without a report writer"):
        uow.reports.write_report(ReportRequest(ReportType.OCCUPANCY), "occupancy-op1.csv")


def test_the_report_writer_writes_an_unpublished_partial_from_its_configuration(
    ward: Database, tmp_path: Path
) -> None:
    output = ReportOutput(tmp_path, lambda: NOW, "owner1")
    with UnitOfWork(ward.engine, reports=output) as uow:
        rows = uow.reports.write_report(ReportRequest(ReportType.OCCUPANCY), "occupancy-op1.csv")
    assert rows > 0
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [".occupancy-op1.csv.owner1.partial"]


def test_a_files_writer_on_sqlite_has_a_wide_page_cache_that_it_gives_back_to_the_pool(
    database: Database,
) -> None:
    """A big file's scattered index inserts need more than SQLite's default 2 MB of cache; readers and
    pooled connections keep the default, so the daemon's memory does not grow with its pool."""
    if database.engine.dialect.name != "sqlite":
        pytest.skip("a SQLite connection setting")
    with database.engine.connect() as reader:
        default = reader.exec_driver_sql("PRAGMA cache_size").scalar()
    with UnitOfWork(database.engine) as uow:
        assert uow.connection.exec_driver_sql("PRAGMA cache_size").scalar() == -WRITER_CACHE_KIB
    with database.engine.connect() as same_pooled_connection:
        assert same_pooled_connection.exec_driver_sql("PRAGMA cache_size").scalar() == default
    assert default != -WRITER_CACHE_KIB
    short_writer = database.engine.connect().execution_options(**{BEGIN_IMMEDIATE: True})
    with short_writer, short_writer.begin():  # a claim, a notification: no file's inserts
        assert short_writer.exec_driver_sql("PRAGMA cache_size").scalar() == default

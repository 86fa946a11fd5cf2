"""Alembic migrations: empty to head, down to base and up again; idempotent; safe from several hosts."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, table, text
from sqlalchemy.exc import IntegrityError

from processor.adapters.database.engine import build_engine
from processor.adapters.database.migrations import (
    current_revision,
    downgrade_to,
    head_revision,
    upgrade_to_head,
)
from processor.adapters.database.models import Base
from processor.logs import configure_logging

SCHEMA_TABLES = {
    "users",
    "patients",
    "caregivers",
    "wards",
    "ward_beds",
    "patient_admissions",
    "patient_discharges",
    "patient_notifications",
    "bulk_operations",
    "scheduled_runs",
    "file_claims",
    "bed_transfers",
    "operation_tallies",
    "operation_duration_tallies",
    "audit_changes",
    "daemon_heartbeats",
}


def user_tables(url: str) -> set[str]:
    engine = build_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_empty_to_head_to_base_and_up_again(empty_database_url: str) -> None:
    engine = build_engine(empty_database_url)
    assert current_revision(engine) is None

    first = upgrade_to_head(engine)
    assert (first.before, first.after, first.changed) == (None, head_revision(), True)
    assert user_tables(empty_database_url) == SCHEMA_TABLES

    down = downgrade_to(engine, "base")
    assert down.after is None
    assert user_tables(empty_database_url) == set()

    assert upgrade_to_head(engine).after == head_revision()
    assert user_tables(empty_database_url) == SCHEMA_TABLES
    engine.dispose()


def test_upgrading_an_up_to_date_database_changes_nothing(empty_database_url: str) -> None:
    engine = build_engine(empty_database_url)
    upgrade_to_head(engine)
    again = upgrade_to_head(engine)
    assert not again.changed
    engine.dispose()


# SQLite cannot reflect indexes on expressions (created_at DESC), so it reports them as different.
SQLITE_UNREFLECTABLE_INDEXES = {
    "ix_bulk_operations_status_created_at",
    "ix_bulk_operations_initiated_by_created_at",
}


def _index_name(difference: object) -> str | None:
    if isinstance(difference, tuple) and difference[0] in ("add_index", "remove_index"):
        return str(difference[1].name)
    return None


def test_the_migrations_build_exactly_the_models(empty_database_url: str) -> None:
    """A model change without a migration fails here."""
    engine = build_engine(empty_database_url)
    upgrade_to_head(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    if empty_database_url.startswith("sqlite"):
        differences = [d for d in differences if _index_name(d) not in SQLITE_UNREFLECTABLE_INDEXES]
    assert differences == []


def test_migrating_does_not_replace_the_logging_setup(empty_database_url: str) -> None:
    configure_logging("INFO", "json")
    handlers_before = list(logging.getLogger().handlers)
    engine = build_engine(empty_database_url)
    upgrade_to_head(engine)
    engine.dispose()
    assert logging.getLogger().handlers == handlers_before


MIGRATE_SCRIPT = """
import sys
from processor.adapters.database.engine import build_engine
from processor.adapters.database.migrations import upgrade_to_head
from processor.logs import configure_logging
configure_logging("WARNING", "json")
print(upgrade_to_head(build_engine(sys.argv[1])).changed)
"""


@pytest.mark.parametrize("processes", [4])
def test_several_hosts_starting_together_migrate_once(
    empty_database_url: str, processes: int, tmp_path: Path
) -> None:
    """Each process is a host starting up; the lock makes exactly one of them create the schema."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_SCRIPT, empty_database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    outcomes = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * processes, outcomes
    assert sorted(out.strip() for out, _ in outcomes) == ["False"] * (processes - 1) + ["True"]
    engine = build_engine(empty_database_url)
    with engine.connect() as connection:
        versions = connection.execute(select(func.count()).select_from(table("alembic_version")))
        assert versions.scalar_one() == 1
    engine.dispose()


# --- 0004: bed transfers, and the CHECK constraints it widens (a table rebuild on SQLite) -------------

SEED_0003 = (
    "INSERT INTO users (id, username, email, first_name, last_name, is_active, created_at) "
    "VALUES (1, 'patient:001', 'ann@example.org', 'Ann', 'Lee', true, '2026-11-01 08:00:00')",
    "INSERT INTO bulk_operations (id, operation_type, status, initiated_by_id, created_at, total_records, "
    "processed_records, successful_records, failed_records) "
    "VALUES (1, 'bulk_assignment', 'completed', 1, '2026-11-01 08:00:00', 1, 1, 1, 0)",
    "INSERT INTO file_claims (id, operation_type, sha256, operation_id, claimed_at) "
    "VALUES (1, 'bulk_assignment', 'ab', 1, '2026-11-01 08:00:00')",
    "INSERT INTO wards (id, code, name, is_active, created_at) VALUES (1, 'CARD', 'C', true, '2026-11-01')",
    "INSERT INTO patients (id, user_id, mrn, created_at, bulk_operation_id) "
    "VALUES (1, 1, '001', '2026-11-01 08:00:00', 1)",
    "INSERT INTO ward_beds (id, code, ward_id, bed_number, status, current_patient_id, updated_at) "
    "VALUES (1, 'CARD-01', 1, '01', 'occupied', 1, '2026-11-01 08:00:00')",
    "INSERT INTO patient_admissions (id, patient_id, bed_id, admitted_at, reason, is_active, "
    "bulk_operation_id, created_at) VALUES (1, 1, 1, '2026-11-01 08:00:00', 'r', true, 1, '2026-11-01')",
    "INSERT INTO patient_notifications (id, patient_id, kind, status, bulk_operation_id, created_at) "
    "VALUES (1, 1, 'admission', 'skipped', 1, '2026-11-01 08:00:00')",
)
SEEDED_COUNTS = {
    "users": 1,
    "bulk_operations": 1,
    "file_claims": 1,
    "patients": 1,
    "ward_beds": 1,
    "patient_admissions": 1,
    "patient_notifications": 1,
}


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in SEEDED_COUNTS
        }


def index_names(engine: Engine, table_name: str) -> set[str]:
    return {str(index["name"]) for index in inspect(engine).get_indexes(table_name)}


def seeded_at_0003(url: str) -> Engine:
    """A database at revision 0003 holding an operation, its claim, a patient in a bed, a notification."""
    engine = build_engine(url)
    upgrade_to_head(engine)
    downgrade_to(engine, "0003")
    with engine.begin() as connection:
        for statement in SEED_0003:
            connection.execute(text(statement))
    return engine


def test_0004_up_down_and_up_again_keeps_every_row_and_reference(empty_database_url: str) -> None:
    """The rebuild of bulk_operations and patient_notifications (SQLite) keeps their rows, the rows that
    reference them, their indexes, and foreign keys enforced afterwards."""
    engine = seeded_at_0003(empty_database_url)
    indexes_before = index_names(engine, "bulk_operations")

    def up_to_0004(engine: Engine) -> None:  # later revisions add indexes and columns of their own
        upgrade_to_head(engine)
        downgrade_to(engine, "0004")

    for step in (up_to_0004, lambda e: downgrade_to(e, "0003"), up_to_0004):
        step(engine)
        assert counts(engine) == SEEDED_COUNTS
        assert index_names(engine, "bulk_operations") == indexes_before
    assert "bed_transfers" in user_tables(empty_database_url)
    if empty_database_url.startswith("sqlite"):
        with engine.connect() as connection:
            history_indexes = connection.execute(
                text("SELECT count(*) FROM sqlite_master WHERE sql LIKE '%created_at DESC%'")
            )
            assert history_indexes.scalar_one() == 2
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE file_claims SET operation_id = 99"))
    engine.dispose()


def test_after_0004_a_transfer_operation_and_a_transfer_notification_may_be_recorded(
    empty_database_url: str,
) -> None:
    engine = seeded_at_0003(empty_database_url)
    upgrade_to_head(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE bulk_operations SET operation_type = 'transfer_patients'"))
        connection.execute(text("UPDATE patient_notifications SET kind = 'transfer'"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE bulk_operations SET operation_type = 'move_patients'"))
    engine.dispose()


def test_0004_refuses_to_downgrade_while_transfers_are_recorded(empty_database_url: str) -> None:
    """The older schema cannot say which beds a moved stay held: nothing is deleted to make it fit."""
    engine = seeded_at_0003(empty_database_url)
    upgrade_to_head(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE bulk_operations SET operation_type = 'transfer_patients'"))
    with pytest.raises(RuntimeError, match="transfers are recorded"):
        downgrade_to(engine, "0003")
    assert current_revision(engine) == head_revision()
    assert counts(engine) == SEEDED_COUNTS
    engine.dispose()


def test_0012_keeps_notifications_and_refuses_to_downgrade_once_one_was_emailed(
    empty_database_url: str,
) -> None:
    """Up, down and up keep the notification rows; once one has an e-mail status, the older schema
    could not say whether it went: the downgrade refuses and deletes nothing."""
    engine = seeded_at_0003(empty_database_url)
    for step in (upgrade_to_head, lambda e: downgrade_to(e, "0011"), upgrade_to_head):
        step(engine)
        assert counts(engine) == SEEDED_COUNTS
    with engine.begin() as connection:
        connection.execute(text("UPDATE patient_notifications SET status = 'email_sent', attempts = 1"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE patient_notifications SET status = 'mailed'"))
    with pytest.raises(RuntimeError, match="e-mail statuses"):
        downgrade_to(engine, "0011")
    assert current_revision(engine) == head_revision()
    assert counts(engine) == SEEDED_COUNTS
    engine.dispose()

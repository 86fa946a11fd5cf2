"""Alembic migrations: empty to head, down to base and up again; idempotent; safe from several hosts."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, table

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

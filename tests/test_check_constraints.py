"""The migrated CHECK constraints allow exactly what the code means: the operation descriptors, and each
enum or tuple of allowed values the models build their constraints from.

Alembic's autogenerate does not compare CHECK constraints, so the models-versus-migrations test in
test_migrations.py cannot see a new operation type (or bed status, …) added without a migration. These
tests read each constraint back from the migrated database, as the database itself keeps it
(PostgreSQL: ``pg_get_constraintdef``; SQLite: the table's ``CREATE TABLE`` text in ``sqlite_master``),
and compare the quoted values it allows.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import CheckConstraint, text

from processor.adapters.database.models import (
    DISCHARGE_STATUSES,
    GENDERS,
    NOTIFICATION_KINDS,
    NOTIFICATION_STATUSES,
    Base,
)
from processor.core.operation_kinds import OPERATION_KINDS
from processor.core.operation_types import BedStatus, OperationStatus
from tests.conftest import Database

POSTGRES_CHECKS = """
    SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE contype = 'c' AND connamespace = current_schema()::regnamespace
"""
SQLITE_TABLES = "SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"
SQLITE_CHECK = re.compile(r'CONSTRAINT\s+"?(\w+)"?\s+CHECK\s*\(', re.IGNORECASE)
QUOTED = re.compile(r"'((?:[^']|'')*)'")

# Every constraint that limits a column to a list of values, and where that list comes from.
ALLOWED: dict[str, set[str]] = {
    "ck_bulk_operations_operation_type_known": {kind.name for kind in OPERATION_KINDS},
    "ck_bulk_operations_status_known": {status.value for status in OperationStatus},
    "ck_ward_beds_status_known": {status.value for status in BedStatus},
    "ck_patients_gender_known": set(GENDERS),
    "ck_patient_discharges_discharge_status_known": set(DISCHARGE_STATUSES),
    "ck_patient_notifications_kind_known": set(NOTIFICATION_KINDS),
    "ck_patient_notifications_status_known": set(NOTIFICATION_STATUSES),
}


def migrated_checks(database: Database) -> dict[str, str]:
    """Every CHECK constraint of the migrated schema: its name and its text, as the database keeps it."""
    with database.engine.connect() as connection:
        if database.backend == "postgresql":
            return {name: body for name, body in connection.execute(text(POSTGRES_CHECKS))}
        tables = connection.execute(text(SQLITE_TABLES)).scalars()
        return {name: body for create_table in tables for name, body in sqlite_checks(create_table)}


def sqlite_checks(create_table: str) -> list[tuple[str, str]]:
    """The named CHECK constraints of one ``CREATE TABLE`` statement, each with its parenthesised text."""
    return [
        (m.group(1), parenthesised(create_table, m.end() - 1)) for m in SQLITE_CHECK.finditer(create_table)
    ]


def parenthesised(sql: str, start: int) -> str:
    """The expression whose opening parenthesis is ``sql[start]``, up to its closing one (quotes skipped)."""
    depth, quoted = 0, False
    for end in range(start, len(sql)):
        char = sql[end]
        if char == "'":
            quoted = not quoted  # an escaped '' toggles twice
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
            if depth == 0:
                return sql[start : end + 1]
    raise AssertionError(f"unbalanced CHECK constraint in {sql!r}")


def quoted_values(constraint: str) -> set[str]:
    """The string literals of a constraint's text: for ``x IN ('a', 'b')`` (or PostgreSQL's
    ``x = ANY (ARRAY['a'::varchar, …])``) the values it allows."""
    return {value.replace("''", "'") for value in QUOTED.findall(constraint)}


def test_the_operation_type_constraint_allows_exactly_the_operation_descriptors(database: Database) -> None:
    """A descriptor added to OPERATION_KINDS without a migration that widens the constraint fails here
    (the database would refuse to record its first file)."""
    constraint = migrated_checks(database)["ck_bulk_operations_operation_type_known"]
    assert quoted_values(constraint) == {kind.name for kind in OPERATION_KINDS}, (
        "bulk_operations.operation_type CHECK differs from OPERATION_KINDS: add an Alembic migration"
    )


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_constraint_on_known_values_allows_exactly_its_source(database: Database, name: str) -> None:
    """Bed status, operation status, gender, discharge status, notification kind and status: each
    migrated constraint allows the values of the enum or tuple the code uses, no more, no fewer."""
    assert quoted_values(migrated_checks(database)[name]) == ALLOWED[name]


def test_every_constraint_on_known_values_is_compared_here(database: Database) -> None:
    """A new ``*_known`` constraint is added to ALLOWED, so that it is compared with its source too."""
    assert {name for name in migrated_checks(database) if name.endswith("_known")} == set(ALLOWED)


def model_checks() -> dict[str, str]:
    """Every CHECK constraint of the models: its name (after the naming convention) and its text."""
    return {
        str(constraint.name): str(constraint.sqltext)
        for table in Base.metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }


def test_the_migrations_build_exactly_the_check_constraints_of_the_models(database: Database) -> None:
    """A CHECK constraint added, dropped or changed in the models without a migration (which
    autogenerate cannot see) fails here: the same names, each mentioning the same quoted values."""
    migrated, models = migrated_checks(database), model_checks()
    assert set(migrated) == set(models)
    assert {name: quoted_values(body) for name, body in migrated.items()} == {
        name: quoted_values(body) for name, body in models.items()
    }

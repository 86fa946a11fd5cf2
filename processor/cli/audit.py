"""``wardbulk audit``: what files changed in a record, value by value (the audit trail of issue 14).

The values are patient data: they are printed to the operator who asks, never logged.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import click

from processor.cli.context import CliContext, pass_context
from processor.cli.history import console, read_database
from processor.errors import UsageError

if TYPE_CHECKING:
    from rich.table import Table

    from processor.adapters.database.audit import PatientTrail

DEFAULT_LIMIT = 1000


@click.group()
def audit() -> None:
    """The audit trail: every value a file changed, with its operation and line."""


@audit.command("patient")
@click.argument("patient_id")
@click.option(
    "--limit", type=click.IntRange(1), default=DEFAULT_LIMIT, show_default=True, help="Latest changes."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def audit_patient(cli_ctx: CliContext, patient_id: str, limit: int, as_json: bool) -> None:
    """The patient PATIENT_ID (exactly as stored): when and by which file it was created, then each
    value a file changed, oldest first (with --limit, the latest ones).

    Exits 1 when no such patient exists and no change to one is recorded.
    """
    from processor.adapters.database.audit import patient_trail  # noqa: PLC0415

    def read(engine: Any) -> PatientTrail:
        with engine.connect() as connection:
            return patient_trail(connection, patient_id, limit)

    trail = read_database(cli_ctx, read)
    if trail.created_at is None and not trail.changes:
        raise UsageError(f"no patient has the patient_id {patient_id!r}, and no change to one is recorded")
    if as_json:
        click.echo(json.dumps(asdict(trail), indent=2, default=_json_value))
        return
    if trail.created_at is None:
        click.echo(f"patient {patient_id}: not in the database now")
    else:
        source = f" from {PurePath(trail.created_from).name}" if trail.created_from else ""
        operation = f" by operation {trail.created_by}" if trail.created_by is not None else ""
        click.echo(f"patient {patient_id}: created {_when(trail.created_at)}{operation}{source}")
    if not trail.changes:
        click.echo("no change recorded since")
        return
    console().print(_changes_table(trail))


def _changes_table(trail: PatientTrail) -> Table:
    from rich.table import Table  # noqa: PLC0415

    table = Table("changed at", "operation", "file", "line", "table", "row", "column", "old", "new")
    for change in trail.changes:
        table.add_row(
            _when(change.at),
            str(change.operation_id),
            PurePath(change.file_name).name if change.file_name else "",
            str(change.line),
            change.table,
            str(change.row_id),
            change.column,
            _shown(change.old),
            _shown(change.new),
        )
    return table


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _shown(value: str | None) -> str:
    return "(none)" if value is None else value


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)

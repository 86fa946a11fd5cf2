"""``wardbulk ops``: the operation history (the seed's history page) as commands with tables and JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from processor.cli.context import OPERATION_CHOICE, CliContext, pass_context
from processor.core.operation_kinds import OperationType
from processor.core.operation_types import OperationStatus
from processor.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Engine

    from processor.adapters.database.history import HistoryFilter

_T = TypeVar("_T")


@click.group()
def ops() -> None:
    """Operation history: list, show one, statistics."""


def _filters(
    operation_type: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int = 100,
) -> HistoryFilter:
    from processor.adapters.database.history import HistoryFilter  # noqa: PLC0415

    return HistoryFilter(
        operation_type, status, since.date() if since else None, until.date() if until else None, limit
    )


DAY = click.DateTime(["%Y-%m-%d"])
STATUS_CHOICE = click.Choice([s.value for s in OperationStatus])


@ops.command("list")
@click.option("--type", "operation_type", type=OPERATION_CHOICE, help="Only this operation type.")
@click.option("--status", type=STATUS_CHOICE, help="Only this status.")
@click.option("--since", type=DAY, help="Created on or after this day (YYYY-MM-DD).")
@click.option("--until", type=DAY, help="Created on or before this day (YYYY-MM-DD).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def ops_list(
    cli_ctx: CliContext,
    operation_type: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Operations, newest first, with record counts, success rate and duration."""
    from processor.adapters.database.history import list_operations  # noqa: PLC0415

    filters = _filters(operation_type, status, since, until, limit)
    found = _read_database(cli_ctx, lambda engine: list_operations(engine, filters))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table("id", "created", "type", "status", "file", "records", "ok", "failed", "success", "duration")
    for op in found:
        duration = f"{op['duration_s']:.1f}s" if op["duration_s"] is not None else ""
        table.add_row(
            str(op["id"]),
            (op["created_at"] or "")[:19],
            op["operation_type"],
            op["status"],
            escape(op["input_file"] or ""),
            str(op["total_records"]),
            str(op["successful_records"]),
            str(op["failed_records"]),
            f"{op['success_rate']:.0f}%",
            duration,
        )
    _console().print(table)


@ops.command("show")
@click.argument("operation_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def ops_show(cli_ctx: CliContext, operation_id: int, as_json: bool) -> None:
    """Everything about one operation: file, sha256, who, times, counts, progress, first errors, outputs."""
    from processor.adapters.database.history import operation_detail  # noqa: PLC0415

    detail = _read_database(cli_ctx, lambda engine: operation_detail(engine, operation_id))
    if detail is None:
        raise UsageError(f"there is no operation {operation_id}")
    detail["outputs"] = _outputs_of(cli_ctx.settings().outbox_dir, detail)
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    for key, value in detail.items():
        if key not in ("first_errors", "error_message", "outputs"):
            click.echo(f"{key:20} {'' if value is None else value}")
    for label, values in (("first errors", detail["first_errors"]), ("outputs", detail["outputs"])):
        click.echo(f"{label}:")
        for value in values:
            click.echo(f"  {value}")


def _outputs_of(outbox_dir: Path, detail: dict[str, Any]) -> list[str]:
    """The outbox files of an operation that exist now (and the report it wrote, if any)."""
    from processor.adapters.outbox import OutboxFiles  # noqa: PLC0415

    files = OutboxFiles.for_operation(
        outbox_dir, OperationType(detail["operation_type"]), detail["input_file"] or "", detail["id"], ""
    )
    existing = [str(path) for path in files.existing()]
    report = detail.get("output_file") or ""
    if report and report not in existing and Path(report).is_file():
        existing.append(report)
    return existing


@ops.command("stats")
@click.option("--type", "operation_type", type=OPERATION_CHOICE, help="Only this operation type.")
@click.option("--since", type=DAY, help="Created on or after this day.")
@click.option("--until", type=DAY, help="Created on or before this day.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def ops_stats(
    cli_ctx: CliContext,
    operation_type: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Totals (all, completed, in progress, failed), success rate and durations, per operation type."""
    from processor.adapters.database.history import operation_stats  # noqa: PLC0415

    filters = _filters(operation_type, None, since, until)
    stats = _read_database(cli_ctx, lambda engine: operation_stats(engine, filters))
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(
        "type", "operations", "completed", "in progress", "failed", "records", "success", "median", "p95"
    )
    for name, totals in [("all", stats["all"]), *stats["by_type"].items()]:
        table.add_row(
            name,
            *(str(totals[k]) for k in ("operations", "completed", "in_progress", "failed", "records")),
            f"{totals['success_rate']:.1f}%",
            _seconds(totals["median_s"]),
            _seconds(totals["p95_s"]),
        )
    _console().print(table)


def _read_database(cli_ctx: CliContext, read: Callable[[Engine], _T]) -> _T:
    """``read(engine)`` on the initialised database, then the connections are closed."""
    from processor.bootstrap import open_database  # noqa: PLC0415

    app = cli_ctx.app()
    try:
        open_database(app)
        return read(app.engine)
    finally:
        app.close()


def _console() -> Console:
    """A console as wide as the terminal; when piped, wide enough that no cell is cut."""
    from rich.console import Console  # noqa: PLC0415

    return Console(width=None if sys.stdout.isatty() else 200)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"

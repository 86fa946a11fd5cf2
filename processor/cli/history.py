"""``wardbulk ops``: the operation history (the seed's history page) as commands with tables and JSON."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from processor.cli.context import OPERATION_CHOICE, CliContext, echo_verdict, pass_context
from processor.core.clock import is_utc
from processor.core.operation_kinds import OperationType
from processor.core.operation_types import OperationStatus
from processor.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy import Engine

    from processor.adapters.database.history import HistoryFilter

_T = TypeVar("_T")


@click.group()
def ops() -> None:
    """Operation history: list, show one, statistics."""


DAY = click.DateTime(["%Y-%m-%d"])
DEFAULT_LIMIT = 100
STATUS_CHOICE = click.Choice([s.value for s in OperationStatus])


def _filters(
    operation_type: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int = DEFAULT_LIMIT,
    before: int | None = None,
    sender: str | None = None,
    zone: tzinfo = UTC,
) -> HistoryFilter:
    """The filter the options ask for; ``--since`` and ``--until`` are days of ``zone``, the wards'."""
    from processor.adapters.database.history import HistoryFilter  # noqa: PLC0415

    day_since, day_until = (since.date() if since else None), (until.date() if until else None)
    return HistoryFilter(
        operation_type, status, day_since, day_until, limit=limit, before=before, sender=sender, zone=zone
    )


@ops.command("list")
@click.option("--type", "operation_type", type=OPERATION_CHOICE, help="Only this operation type.")
@click.option("--status", type=STATUS_CHOICE, help="Only this status.")
@click.option("--since", type=DAY, help="Created on or after this day (YYYY-MM-DD, local: timezone).")
@click.option("--until", type=DAY, help="Created on or before this day (YYYY-MM-DD, local: timezone).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=DEFAULT_LIMIT, show_default=True)
@click.option("--before", type=click.IntRange(min=1), metavar="ID", help="Only ids below ID: the next page.")
@click.option("--sender", help="Only the files of this configured sender ([[senders]] name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def ops_list(
    cli_ctx: CliContext,
    operation_type: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    before: int | None,
    sender: str | None,
    as_json: bool,
) -> None:
    """Operations, newest first, with record counts, success rate and duration.

    At most --limit of them; the table ends with the command that shows the next page (--before the
    last id shown) when there is one.
    """
    from processor.adapters.database.history import list_operations  # noqa: PLC0415

    # One operation more than the page tells whether a next page exists, without counting them all.
    zone = cli_ctx.settings().zone()
    filters = _filters(operation_type, status, since, until, limit + 1, before, sender, zone)
    found = read_database(cli_ctx, lambda engine: list_operations(engine, filters))
    page = found[:limit]
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    screen = console()
    screen.print(_operations_table(page, zone))
    if len(found) > limit:
        next_page = replace(filters, limit=limit, before=page[-1]["id"])
        screen.print(f"next page: {_list_command(next_page)}", style="dim", markup=False, highlight=False)


def _operations_table(operations: list[dict[str, Any]], zone: tzinfo = UTC) -> Table:
    """The page as a table; creation times in the wards' zone (named in the header unless UTC), as the
    days of --since and --until are. JSON keeps the stored UTC times."""
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    created = "created" if is_utc(zone) else f"created ({zone})"
    columns = ("id", created, "type", "status", "file", "sender", "records", "ok", "failed", "success")
    table = Table(*columns, "duration")
    for op in operations:
        duration = f"{op['duration_s']:.1f}s" if op["duration_s"] is not None else ""
        table.add_row(
            str(op["id"]),
            _local_time(op["created_at"], zone)[:19],
            op["operation_type"],
            op["status"],
            escape(op["input_file"] or ""),
            op["sender"] or "",
            str(op["total_records"]),
            str(op["successful_records"]),
            str(op["failed_records"]),
            f"{op['success_rate']:.0f}%",
            duration,
        )
    return table


def _local_time(stored: str | None, zone: tzinfo) -> str:
    """A stored time's ISO text (UTC) as the time in ``zone``; unchanged in UTC."""
    if not stored or is_utc(zone):
        return stored or ""
    return datetime.fromisoformat(stored).astimezone(zone).isoformat()


def _list_command(filters: HistoryFilter) -> str:
    """The ``wardbulk ops list`` command line that lists ``filters`` (options at their defaults left out)."""
    options = [
        ("--type", filters.operation_type),
        ("--status", filters.status),
        ("--since", filters.since),
        ("--until", filters.until),
        ("--limit", filters.limit if filters.limit != DEFAULT_LIMIT else None),
        ("--before", filters.before),
        ("--sender", filters.sender),
    ]
    words = ["wardbulk", "ops", "list"]
    for option, value in options:
        if value is not None:
            words += [option, str(value)]
    return shlex.join(words)


@ops.command("show")
@click.argument("operation_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def ops_show(cli_ctx: CliContext, operation_id: int, as_json: bool) -> None:
    """Everything about one operation: file, sha256, who, times, counts, progress, first errors, outputs."""
    from processor.adapters.database.history import operation_detail  # noqa: PLC0415

    detail = read_database(cli_ctx, lambda engine: operation_detail(engine, operation_id))
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
    if detail["outputs_purged_at"]:
        click.echo(f"  (outbox files purged by retention at {detail['outputs_purged_at']})")


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


@ops.command("wait")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--timeout", type=click.FloatRange(0), default=300.0, show_default=True, help="Seconds.")
@pass_context
def ops_wait(cli_ctx: CliContext, file: Path, timeout: float) -> None:
    """Wait for the summary of FILE, a file dropped into inbox/<operation>/, and print it.

    Exits 0 when its operation completed, 1 when it failed or no summary came within --timeout.
    """
    from processor.cli.waiting import wait_for_summary  # noqa: PLC0415

    settings = cli_ctx.settings()
    summary = read_database(
        cli_ctx,
        lambda engine: wait_for_summary(engine, settings.inbox_dir, settings.outbox_dir, file, timeout),
    )
    echo_verdict(json.dumps(summary, indent=2), failed=summary.get("status") != OperationStatus.COMPLETED)


@ops.command("stats")
@click.option("--type", "operation_type", type=OPERATION_CHOICE, help="Only this operation type.")
@click.option("--since", type=DAY, help="Created on or after this day (local: timezone).")
@click.option("--until", type=DAY, help="Created on or before this day (local: timezone).")
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

    filters = _filters(operation_type, None, since, until, zone=cli_ctx.settings().zone())
    stats = read_database(cli_ctx, lambda engine: operation_stats(engine, filters))
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
    console().print(table)


def read_database(cli_ctx: CliContext, read: Callable[[Engine], _T]) -> _T:
    """``read(engine)`` on the initialised database, then the connections are closed."""
    from processor.bootstrap import open_database  # noqa: PLC0415

    app = cli_ctx.app()
    try:
        open_database(app)
        return read(app.engine)
    finally:
        app.close()


def console() -> Console:
    """A console as wide as the terminal; when piped, wide enough that no cell is cut."""
    from rich.console import Console  # noqa: PLC0415

    class PipedConsole(Console):
        def on_broken_pipe(self) -> None:
            """Rich exits 1 when the reader of a pipe goes (``| head``); that is the reader's choice,
            not a failure: let the command line end quietly with 0 (``cli.main``)."""
            raise BrokenPipeError

    return PipedConsole(width=None if sys.stdout.isatty() else 200)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"

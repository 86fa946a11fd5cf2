"""The ``wardbulk`` command line. Maps failures to exit codes with one clear line, never a traceback.

Exit codes: 0 success, 1 an operation failed, 2 bad configuration or usage, 3 database unavailable
(unreachable, never initialised, or failing in the middle of a command), 70 an unexpected internal error
(logged, redacted, with its traceback). Only ``init`` creates a database; every other command that uses
one exits 3, having created nothing, when it does not exist yet.
"""

from __future__ import annotations

import atexit
import csv
import gc
import getpass
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from processor import __version__
from processor.cli.audit import audit
from processor.cli.context import (
    OPERATION_CHOICE,
    CliContext,
    echo_verdict,
    imports_uncollected,
    pass_context,
    quiet_exit,
)
from processor.cli.history import ops
from processor.cli.upkeep import config, health, metrics, purge
from processor.core.operation_kinds import TRIGGER_TYPES, OperationType
from processor.core.operation_types import OperationStatus
from processor.core.report_request import ReportRequest, ReportType
from processor.errors import DatabaseUnavailable, UsageError, WardbulkError

if TYPE_CHECKING:
    from processor.pipeline import FileOutcome, Pipeline

# Start-up time is paid by every command (a `wardbulk process` of a small file is mostly start-up), so
# this module imports only what parsing the command line needs, and each command imports the rest
# itself (the imports marked PLC0415). `--version`, `--help` and `template` load no database, settings
# or logging code at all. This name is settings.CONFIG_ENV_VAR (a test keeps them equal), written out
# here because importing the settings module costs pydantic-settings and SQLAlchemy.
CONFIG_ENV_VAR = "WARDBULK_CONFIG"
INTERNAL_ERROR_EXIT = 70
_LAST_COLLECTION_SPARED = False
_T = TypeVar("_T")


class ReaderLeft(Exception):
    """The reader of stdout went away (``wardbulk … | head``): raised past click, which would exit 1."""


class WardbulkGroup(click.Group):
    """The command group; a closed stdout pipe leaves it as ``ReaderLeft`` for ``main``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise ReaderLeft from exc


@click.group(
    cls=WardbulkGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar=CONFIG_ENV_VAR,
    help=f"Configuration file [env {CONFIG_ENV_VAR}; default config/wardbulk.toml].",
)
@click.version_option(__version__, prog_name="wardbulk")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """wardbulk: CSV files dropped into inbox/<operation>/ become ward database changes,
    with a result, an error report and a summary in outbox/<operation>/.

    Start with `wardbulk init --demo`, then `wardbulk run`.
    """
    ctx.ensure_object(CliContext).config_path = config_path


@cli.command()
@click.option("--demo", is_flag=True, help="Also add demo wards and beds (idempotent).")
@pass_context
def init(cli_ctx: CliContext, demo: bool) -> None:
    """Create the database if needed, bring it to the current schema and create the folders. Safe to
    run again. The only command that creates a database.
    """
    from processor.bootstrap import initialise  # noqa: PLC0415

    app = cli_ctx.app(create_database=True)
    try:
        result = initialise(app, demo=demo)
    finally:
        app.close()
    revision = result.migration.after or "empty"
    verb = "migrated to" if result.migration.changed else "already at"
    click.echo(f"database {app.settings.masked_database_url()}: schema {verb} revision {revision}")
    click.echo(
        f"folders: {len(result.folders_created)} created under {app.settings.inbox_dir}, "
        f"{app.settings.outbox_dir}, {app.settings.archive_dir}"
    )
    if result.demo is not None:
        click.echo(f"demo data: {result.demo.wards_added} wards and {result.demo.beds_added} beds added")


@cli.command()
@click.option("--once", is_flag=True, help="Process the files present now, as they become ready, then exit.")
@pass_context
def run(cli_ctx: CliContext, once: bool) -> None:
    """Watch inbox/<operation>/ and process every file dropped there, in arrival order.

    Brings the database (created by `wardbulk init`) to the current schema first. SIGTERM or Ctrl-C
    stops gracefully: the file in hand is rolled back and processed again at the next start. A full
    disk or a read-only share pauses it until it can write again; with --once it exits 75 instead,
    and the files wait for the next run.
    """
    from processor.bootstrap import build_daemon, prepare  # noqa: PLC0415

    app = cli_ctx.app()
    try:
        prepare(app)
        daemon = build_daemon(app)
        daemon.install_signal_handlers()
        code = daemon.run(once=once)
    finally:
        app.close()
    if code:
        sys.exit(code)


def _file_for(operations: click.Choice[str]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The FILE argument and the --operation option of ``process`` and ``validate``."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option(
            "--operation",
            "-O",
            "operation",
            type=operations,
            required=True,
            help="The operation type the file is for.",
        )(command)
        return click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))(command)

    return decorate


@cli.command()
@_file_for(OPERATION_CHOICE)
@pass_context
def process(cli_ctx: CliContext, file: Path, operation: str) -> None:
    """Apply one FILE from anywhere (a copy is processed; FILE stays) and write the usual outbox files.

    Exits 0 when the operation completed (rows with errors are in errors.csv), 1 when it failed.
    """
    outcome = _one_file(cli_ctx, file, OperationType(operation), dry_run=False)
    echo_verdict(_describe(outcome), failed=outcome.status != OperationStatus.COMPLETED)


@cli.command()
@_file_for(click.Choice([t.value for t in OperationType if t not in TRIGGER_TYPES]))
@pass_context
def validate(cli_ctx: CliContext, file: Path, operation: str) -> None:
    """Dry run: read and check FILE exactly as `process` would, against the ward database, and write
    the same outbox files, applying nothing. Recorded as an operation of its own (status validated);
    the file may be processed for real afterwards (a dry run takes no claim on its bytes).

    Exits 0 when the file was validated (rows with errors are in errors.csv and rejected.csv), 1 when
    a real run would fail it as a whole (its error code says why).
    """
    outcome = _one_file(cli_ctx, file, OperationType(operation), dry_run=True)
    echo_verdict(_describe(outcome), failed=outcome.status != OperationStatus.VALIDATED)


def _one_file(cli_ctx: CliContext, file: Path, operation_type: OperationType, dry_run: bool) -> FileOutcome:
    """A copy of ``file`` claimed and seen through to its outbox files (a dry run, or for real)."""
    with imports_uncollected():
        from processor.adapters import inbox  # noqa: PLC0415
        from processor.bootstrap import build_pipeline, prepare  # noqa: PLC0415
        from processor.pipeline import process_claimed  # noqa: PLC0415

    app = cli_ctx.app()
    try:
        prepare(app)
        pipeline = build_pipeline(app)
        inbox_dir = app.settings.inbox_dir
        claimed = inbox.copy_in(inbox_dir, file, operation_type, _cli_user(), pipeline.host, dry_run)
        outcome = _with_progress(pipeline, lambda: process_claimed(pipeline, claimed, dry_run))
        if not dry_run:
            _mail_caregivers(pipeline)
        return outcome
    finally:
        app.close()


def _mail_caregivers(pipeline: Pipeline) -> None:
    """The caregiver e-mails the file committed (``[notifications] email``), sent before exiting; what
    cannot go now waits for the daemon."""
    from processor.notifying import Courier  # noqa: PLC0415

    Courier(pipeline.engine, pipeline.settings, pipeline.host, pipeline.clock).deliver_now()


def _cli_user() -> str:
    return getpass.getuser()


def _with_progress(pipeline: Pipeline, work: Callable[[], FileOutcome]) -> FileOutcome:
    """Run ``work`` with a Rich progress bar when stderr is a terminal."""
    if not sys.stderr.isatty():
        return work()
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("validating", total=None)
        pipeline.on_progress = lambda rows: progress.update(task, completed=rows)
        result = work()
    return result


def _describe(outcome: FileOutcome) -> str:
    counts = outcome.counts
    done = "valid (nothing applied: a dry run)" if outcome.status == OperationStatus.VALIDATED else "applied"
    text = (
        f"operation {outcome.operation_id} {outcome.status.value}: {counts.successful} of "
        f"{counts.total} rows {done}, {counts.failed} with errors"
    )
    if outcome.error_code:
        text += f" (error code {outcome.error_code})"
    return f"{text}; summary: {outcome.summary}"


@cli.command()
@click.argument("report_type", type=click.Choice([t.value for t in ReportType]))
@click.option("--ward", help="Only this ward (its code).")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day, YYYY-MM-DD.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day, YYYY-MM-DD (included).")
@click.option("-o", "--output", help="Write to this file (- for stdout) instead of outbox/reports/.")
@pass_context
def report(
    cli_ctx: CliContext,
    report_type: str,
    ward: str | None,
    start: datetime | None,
    end: datetime | None,
    output: str | None,
) -> None:
    """Write one report now: occupancy, patient_list, admission_discharge, bed_utilization or
    export_patients. Recorded as an operation like every other.
    """
    request = ReportRequest(
        ReportType(report_type), ward, start.date() if start else None, end.date() if end else None
    )
    with imports_uncollected():
        from processor.adapters.owners import this_process  # noqa: PLC0415
        from processor.bootstrap import prepare  # noqa: PLC0415
        from processor.reports.files import ReaderGone  # noqa: PLC0415
        from processor.reports.service import request_problem, run_report  # noqa: PLC0415

    app = cli_ctx.app()
    try:
        prepare(app)
        problem = request_problem(app.engine, request)
        if problem:
            raise UsageError(problem)
        outcome = run_report(
            app.engine,
            app.settings.outbox_dir,
            app.clock,
            request,
            _cli_user(),
            this_process(),
            f"wardbulk report {report_type}",
            output,
            zone=app.settings.zone(),
        )
    except ReaderGone:
        quiet_exit(0)  # the operation completed with what the reader took
    finally:
        app.close()
    if outcome.output != "-":
        click.echo(f"operation {outcome.operation_id}: {outcome.rows} rows written to {outcome.output}")


@cli.command()
@click.argument("operation", type=OPERATION_CHOICE)
def template(operation: str) -> None:
    """Print a header row and one example row for OPERATION (valid against `init --demo` data)."""
    from processor.core.operation_kinds import format_of  # noqa: PLC0415

    csv_format = format_of(OperationType(operation))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(csv_format.columns)
    if csv_format.example:
        writer.writerow([csv_format.example.get(column, "") for column in csv_format.columns])


cli.add_command(ops)
cli.add_command(audit)
cli.add_command(config)
cli.add_command(purge)
cli.add_command(health)
cli.add_command(metrics)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``wardbulk`` script: runs the CLI and turns failures into exit codes."""
    _spare_the_last_collection()
    context = CliContext()
    try:
        cli.main(args=argv, prog_name="wardbulk", standalone_mode=False, obj=context)
    except click.exceptions.Abort:
        click.echo("wardbulk: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except WardbulkError as exc:
        _fail(exc)
    except (ReaderLeft, BrokenPipeError):
        quiet_exit(0)
    except Exception as exc:
        unavailable = _database_failure(exc, context)
        if unavailable is None:
            _crashed()
        _fail(unavailable)
    try:
        sys.stdout.flush()  # what is still buffered goes now, while a closed pipe can be told apart
    except BrokenPipeError:
        quiet_exit(0)
    sys.exit(0)


def _spare_the_last_collection() -> None:
    """Let the interpreter end without walking the whole heap for garbage (once per process).

    At exit, before tearing down the modules, the interpreter collects garbage over every object its
    imports made (SQLAlchemy, pydantic): several full collections, ~65 ms of a one-row `wardbulk process`,
    to free memory the operating system takes back anyway. ``gc.freeze`` as the last exit handler (they
    run last-registered first, and this one is registered before any command runs) sets the heap aside
    once every other handler (logging's flush among them) has run. Files and connections are closed by
    the code that opened them, never left to the collector, so nothing that matters waits for it.
    """
    global _LAST_COLLECTION_SPARED  # noqa: PLW0603 (once per process, however often main runs)
    if not _LAST_COLLECTION_SPARED:
        atexit.register(gc.freeze)
        _LAST_COLLECTION_SPARED = True


def _fail(exc: WardbulkError) -> NoReturn:
    click.echo(f"wardbulk: error: {exc}", err=True)
    sys.exit(exc.exit_code)


def _database_failure(exc: Exception, context: CliContext) -> DatabaseUnavailable | None:
    """``exc`` as ``DatabaseUnavailable`` when the database failed in the middle of a command: SQLAlchemy's
    OperationalError or InterfaceError (connection lost, server shut down, disk full, database locked).
    Other DB-API errors (a constraint, a syntax error) are wardbulk bugs and stay internal errors.
    """
    if context.built is None:  # no engine was built: whatever failed, it was not the database
        return None
    from sqlalchemy.exc import InterfaceError, OperationalError  # noqa: PLC0415

    from processor.adapters.database.engine import database_label, failure_reason  # noqa: PLC0415

    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    engine = context.built.engine
    return DatabaseUnavailable.failed(database_label(engine), failure_reason(exc, engine.url))


def _crashed() -> NoReturn:
    """Log the exception being handled, with its (redacted) traceback, and exit 70."""
    from processor.logs import get_logger  # noqa: PLC0415

    get_logger(__name__).exception("command_crashed")
    click.echo("wardbulk: internal error (details in the log above)", err=True)
    sys.exit(INTERNAL_ERROR_EXIT)

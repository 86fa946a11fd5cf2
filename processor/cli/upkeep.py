"""``wardbulk config check`` and ``wardbulk purge``: looking after an installation."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from processor.cli.context import CliContext, pass_context


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the effective configuration as JSON.")
@pass_context
def config_check(cli_ctx: CliContext, as_json: bool) -> None:
    """Validate the configuration and print the effective values (passwords masked), saying which file
    was read (or that none was) and warning about WARDBULK_* variables that name no setting.

    A bad value prints one line naming the key and exits with code 2.
    """
    from processor.settings import config_path_from, unknown_environment_variables  # noqa: PLC0415

    settings = cli_ctx.settings()
    effective = settings.effective()
    for name, resembles in unknown_environment_variables():
        hint = f"; did you mean {resembles}?" if resembles else ""
        click.echo(f"wardbulk: warning: {name} names no setting and is ignored{hint}", err=True)
    if as_json:
        click.echo(json.dumps(effective, indent=2))
        return
    click.echo(_config_source(config_path_from(cli_ctx.config_path)))
    click.echo("configuration is valid")
    for key, value in _flatten(effective):
        click.echo(f"{key} = {json.dumps(value)}")


def _config_source(path: Path | None) -> str:
    """Which configuration file was read, or that none was (and where it was looked for)."""
    if path is not None:
        return f"configuration file: {path.resolve()}"
    from processor.settings import DEFAULT_CONFIG_PATH  # noqa: PLC0415

    return (
        f"no configuration file: {DEFAULT_CONFIG_PATH} is not in {Path.cwd()} (give --config or "
        "WARDBULK_CONFIG); the defaults and WARDBULK_* variables apply"
    )


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@click.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_context
def purge(cli_ctx: CliContext, dry_run: bool, as_json: bool) -> None:
    """Delete expired files: archived originals older than archive_retention_days, and outbox files
    (results, error reports, summaries, notifications, rejected originals, reports) older than
    outbox_retention_days. The -latest report copies and the dashboard stay; so do the operations'
    records, marked as having purged outputs. For cron, where no daemon runs (the daemon purges daily).
    """
    from processor.bootstrap import open_database  # noqa: PLC0415
    from processor.housekeeping import purge_expired  # noqa: PLC0415

    app = cli_ctx.app()
    try:
        open_database(app)
        done = purge_expired(app.settings, app.engine, app.clock(), dry_run=dry_run)
    finally:
        app.close()
    if as_json:
        click.echo(json.dumps(asdict(done), indent=2, default=str))
        return
    verb = "would delete" if dry_run else "deleted"
    for path in [*done.archive, *done.outbox] if dry_run else []:
        click.echo(str(path))
    click.echo(
        f"{verb} {len(done.archive)} archived originals and {len(done.outbox)} outbox files"
        + ("" if dry_run else f"; {done.operations_marked} operations marked as having purged outputs")
    )


@click.command()
@click.option(
    "--max-wait",
    "max_wait_minutes",
    type=click.FloatRange(0),
    default=15.0,
    show_default=True,
    help="Minutes a file may wait in the inbox before it is a warning.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def health(cli_ctx: CliContext, max_wait_minutes: float, as_json: bool) -> None:
    """Is wardbulk working? Checks the database, the daemons' heartbeats, the inbox's backlog and the
    last failed file, and exits 0 (OK), 1 (WARNING) or 2 (CRITICAL), as monitoring systems expect.

    Read-only: it creates, migrates and writes nothing.
    """
    from datetime import timedelta  # noqa: PLC0415

    from processor.health import Level, check_health  # noqa: PLC0415

    app = cli_ctx.app()
    try:
        checks = check_health(app.settings, app.engine, timedelta(minutes=max_wait_minutes))
    finally:
        app.close()
    worst = max(check.level for check in checks)
    if as_json:
        found = [{**asdict(check), "level": check.level.name} for check in checks]
        click.echo(json.dumps({"status": worst.name, "checks": found}, indent=2))
    else:
        for check in checks:
            click.echo(f"{check.level.name:8} {check.name:12} {check.message}")
    if worst is not Level.OK:
        sys.exit(int(worst))


@click.command()
@click.option(
    "--textfile",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write them to this file (atomically), for node_exporter's textfile collector.",
)
@pass_context
def metrics(cli_ctx: CliContext, textfile: Path | None) -> None:
    """Print the Prometheus metrics (files, records, durations, backlog, daemons) read now; the daemon
    serves the same at metrics_address."""
    from processor.metrics import exposition  # noqa: PLC0415

    app = cli_ctx.app()  # read-only: nothing migrated; a database it cannot read is database_up 0
    try:
        text = exposition(app.engine, app.settings)
    finally:
        app.close()
    if textfile is None:
        sys.stdout.buffer.write(text)
        return
    partial = textfile.with_name(f".{textfile.name}.partial")
    partial.write_bytes(text)
    partial.replace(textfile)

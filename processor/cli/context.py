"""What every command shares: the context that carries ``--config`` and the app it builds, and choices.

Start-up time is paid by every command, so this module imports only what parsing the command line needs.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from processor.core.operation_kinds import OperationType

if TYPE_CHECKING:
    from processor.bootstrap import App
    from processor.settings import Settings

OPERATION_CHOICE = click.Choice([t.value for t in OperationType])


@dataclass
class CliContext:
    """Carries ``--config`` to subcommands; settings are loaded only when a command needs them. Keeps
    the app it built, so that ``main`` can name the database of a failure in the middle of a command.
    """

    config_path: Path | None = None
    _settings: Settings | None = field(default=None, init=False)
    built: App | None = field(default=None, init=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from processor.logs import configure_logging  # noqa: PLC0415
            from processor.settings import load_settings  # noqa: PLC0415

            self._settings = load_settings(self.config_path)
            configure_logging(self._settings.log_level, self._settings.log_format)
        return self._settings

    def app(self, create_database: bool = False) -> App:
        """The app; its engine may create the database only with ``create_database`` (``init``)."""
        from processor.bootstrap import build_app  # noqa: PLC0415

        self.built = build_app(self.settings(), create_database=create_database)
        return self.built


pass_context = click.make_pass_decorator(CliContext)


pass_context = click.make_pass_decorator(CliContext)


@contextmanager
def imports_uncollected() -> Iterator[None]:
    """No garbage collection while a command imports its modules; what they made joins the oldest generation.

    The imports of `wardbulk process` (SQLAlchemy, pydantic, the models and row models) make a few hundred
    thousand objects that live as long as the process, and next to no garbage; collecting while they are
    made cost ~30 ms of every one-row file (about 180 young collections, 16 middle ones and a full one).
    Afterwards they are moved to the oldest generation as if they had survived those collections
    (``freeze`` then ``unfreeze``: nothing stays frozen), so the next young collection does not walk them
    either. When something else has frozen objects, they are left as they are, and so are the new ones.
    """
    was_enabled = gc.isenabled()
    nothing_frozen = gc.get_freeze_count() == 0
    gc.disable()
    try:
        yield
    finally:
        if nothing_frozen:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def quiet_exit(code: int) -> NoReturn:
    """The reader of stdout went away (``wardbulk … | head``): end with ``code`` without a traceback (0,
    unless the command's own verdict is a failure), stdout pointed at /dev/null so that the interpreter's
    last flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(code)


def echo_verdict(text: str, failed: bool) -> None:
    """Print a command's result, then exit 1 if it failed: also when the reader of stdout has gone, so
    that a closed pipe never turns a failed operation into a success."""
    try:
        click.echo(text)
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_exit(1 if failed else 0)
    if failed:
        sys.exit(1)

"""What every command shares: the context that carries ``--config`` and the app it builds, and choices.

Start-up time is paid by every command, so this module imports only what parsing the command line needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

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

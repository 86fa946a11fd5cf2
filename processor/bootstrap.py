"""Builds the application once: settings in, engine, folders and schema out. Only this module wires.

Start-up time matters: every ``wardbulk process FILE`` pays it. So what only some commands need is
imported by the function that needs it: Alembic when the schema must change, the pipeline and its
operations for files, the daemon (watchdog, APScheduler, the dashboard) for ``run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from processor.adapters.database import schema_version
from processor.adapters.database.engine import build_engine
from processor.adapters.folders import create_folders, required_folders
from processor.adapters.owners import this_process, token
from processor.core.clock import Clock, system_clock
from processor.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from processor.adapters.database.demo import DemoSeedResult
    from processor.adapters.database.migrations import MigrationResult
    from processor.daemon import Daemon
    from processor.pipeline import Pipeline


@dataclass
class App:
    """The wired application: one engine per process, shared by every component."""

    settings: Settings
    engine: Engine
    clock: Clock = field(default=system_clock)

    def folders(self) -> list[Path]:
        """Every folder the configuration names."""
        s = self.settings
        return required_folders(s.inbox_dir, s.outbox_dir, s.archive_dir)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


@dataclass(frozen=True)
class InitResult:
    """What ``initialise`` did: schema revisions, folders created, demo rows added."""

    migration: MigrationResult
    folders_created: list[Path]
    demo: DemoSeedResult | None


def build_app(settings: Settings, clock: Clock = system_clock) -> App:
    """The application for ``settings``; nothing is touched on disk or in the database yet."""
    return App(settings=settings, engine=build_engine(settings.database_url), clock=clock)


def initialise(app: App, demo: bool = False) -> InitResult:
    """Create folders, bring the schema to head and, with ``demo``, add demo wards and beds. Idempotent."""
    from processor.adapters.database.migrations import upgrade_to_head  # noqa: PLC0415 (Alembic: slow)

    created = create_folders(app.folders())
    migration = upgrade_to_head(app.engine)
    demo_result = None
    if demo:
        from processor.adapters.database.demo import seed_demo_data  # noqa: PLC0415 (init only)

        with app.engine.begin() as connection:
            demo_result = seed_demo_data(connection, app.clock)
    return InitResult(migration=migration, folders_created=created, demo=demo_result)


def prepare(app: App) -> None:
    """What every command that touches files or the database needs first: ``initialise`` without demo
    data, Alembic loaded only when the schema is not already at head (the usual case costs one query).
    """
    if schema_version.is_current(app.engine):
        create_folders(app.folders())
    else:
        initialise(app)


def build_pipeline(app: App) -> Pipeline:
    """The file pipeline on the app's engine and clock; its stores can write reports."""
    # The pipeline brings the operations (their pydantic row models); not every command needs them.
    from processor.pipeline import Pipeline  # noqa: PLC0415
    from processor.reports.store import reporting_store_factory  # noqa: PLC0415

    owner = this_process()
    factory = reporting_store_factory(app.settings.outbox_dir, app.clock, token(owner))
    return Pipeline(
        settings=app.settings, engine=app.engine, clock=app.clock, host=owner, store_factory=factory
    )


def build_daemon(app: App) -> Daemon:
    """A daemon on a fresh pipeline; call ``initialise`` first so folders and schema exist."""
    from processor.daemon import Daemon  # noqa: PLC0415 (watchdog, APScheduler: for `run` only)

    return Daemon(settings=app.settings, pipeline=build_pipeline(app))

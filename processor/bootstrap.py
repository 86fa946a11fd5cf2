"""Builds the application once: settings in, engine, folders and schema out. Only this module wires."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from processor.adapters.database.demo import DemoSeedResult, seed_demo_data
from processor.adapters.database.engine import build_engine
from processor.adapters.database.migrations import MigrationResult, upgrade_to_head
from processor.adapters.folders import create_folders, required_folders
from processor.adapters.owners import this_process, token
from processor.core.clock import Clock, system_clock
from processor.daemon import Daemon
from processor.pipeline import Pipeline
from processor.reports.store import reporting_store_factory
from processor.settings import Settings


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
    created = create_folders(app.folders())
    migration = upgrade_to_head(app.engine)
    demo_result = None
    if demo:
        with app.engine.begin() as connection:
            demo_result = seed_demo_data(connection, app.clock)
    return InitResult(migration=migration, folders_created=created, demo=demo_result)


def build_pipeline(app: App) -> Pipeline:
    """The file pipeline on the app's engine and clock; its stores can write reports."""
    owner = this_process()
    factory = reporting_store_factory(app.settings.outbox_dir, app.clock, token(owner))
    return Pipeline(
        settings=app.settings, engine=app.engine, clock=app.clock, host=owner, store_factory=factory
    )


def build_daemon(app: App) -> Daemon:
    """A daemon on a fresh pipeline; call ``initialise`` first so folders and schema exist."""
    return Daemon(settings=app.settings, pipeline=build_pipeline(app))

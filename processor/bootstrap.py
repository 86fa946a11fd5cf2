"""Builds the application once: settings in, engine, folders and schema out. Only this module wires.

Start-up time matters: every ``wardbulk process FILE`` pays it. So what only some commands need is
imported by the function that needs it: Alembic when the schema must change, the pipeline and its
operations for files, the daemon (watchdog, APScheduler, the dashboard) for ``run``.

Only ``wardbulk init`` creates a database (``build_app(..., create_database=True)``, then
``initialise``). Every other command opens an existing one with ``open_database``, which refuses a
database that was never initialised, and creates nothing, not even a SQLite file, when it refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from processor.adapters.database import schema_version
from processor.adapters.database.engine import build_engine, database_label, settings_that_lose_commits
from processor.adapters.folders import create_folders, required_folders
from processor.adapters.owners import this_process, token
from processor.core.clock import Clock, system_clock
from processor.errors import DatabaseUnavailable
from processor.logs import get_logger
from processor.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from processor.adapters.database.demo import DemoSeedResult
    from processor.adapters.database.migrations import MigrationResult
    from processor.daemon import Daemon
    from processor.pipeline import Pipeline

log = get_logger(__name__)


@dataclass
class App:
    """The wired application: one engine per process, shared by every component."""

    settings: Settings
    engine: Engine
    clock: Clock = field(default=system_clock)

    def folders(self) -> list[Path]:
        """Every folder the configuration names."""
        s = self.settings
        senders = [s.inbox_dir / operation.value / folder for operation, folder in s.sender_folders()]
        return required_folders(s.inbox_dir, s.outbox_dir, s.archive_dir) + senders

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


@dataclass(frozen=True)
class InitResult:
    """What ``initialise`` did: schema revisions, folders created, demo rows added."""

    migration: MigrationResult
    folders_created: list[Path]
    demo: DemoSeedResult | None


def build_app(settings: Settings, clock: Clock = system_clock, *, create_database: bool = False) -> App:
    """The application for ``settings``; nothing is touched on disk or in the database yet.

    Its engine opens only an existing database unless ``create_database`` (for ``wardbulk init``): then
    the first connection creates a missing SQLite file and its folder.
    """
    engine = build_engine(settings.database_url, create=create_database)
    return App(settings=settings, engine=engine, clock=clock)


def initialise(app: App, demo: bool = False) -> InitResult:
    """Bring the schema to head (creating it in an empty database), then create the folders and, with
    ``demo``, add demo wards and beds. Idempotent. Raises ``DatabaseUnavailable`` before creating any
    folder when the database cannot be reached.
    """
    from processor.adapters.database.migrations import upgrade_to_head  # noqa: PLC0415 (Alembic: slow)

    migration = upgrade_to_head(app.engine)
    created = create_folders(app.folders())
    demo_result = None
    if demo:
        from processor.adapters.database.demo import seed_demo_data  # noqa: PLC0415 (init only)

        with app.engine.begin() as connection:
            demo_result = seed_demo_data(connection, app.clock)
    return InitResult(migration=migration, folders_created=created, demo=demo_result)


def open_database(app: App) -> None:
    """What every command that uses the database needs first: a database initialised by ``wardbulk
    init``, at the current schema. One at an older revision is migrated (Alembic is loaded only then;
    the usual case costs two small queries). Raises ``DatabaseUnavailable`` when the database cannot be
    reached or was never initialised, having created nothing.
    """
    revisions = schema_version.recorded_revisions(app.engine)
    if revisions is None:
        raise DatabaseUnavailable.not_initialised(database_label(app.engine))
    if not schema_version.is_head(revisions):
        from processor.adapters.database.migrations import upgrade_to_head  # noqa: PLC0415 (Alembic: slow)

        upgrade_to_head(app.engine)


def prepare(app: App) -> None:
    """What every command that processes files needs first: ``open_database``, then the folders."""
    open_database(app)
    create_folders(app.folders())


def build_pipeline(app: App) -> Pipeline:
    """The file pipeline on the app's engine and clock; its stores can write reports."""
    # The pipeline brings the operations (their pydantic row models); not every command needs them.
    from processor.pipeline import Pipeline  # noqa: PLC0415
    from processor.reports.store import ReportOutput  # noqa: PLC0415

    owner = this_process()
    reports = ReportOutput(app.settings.outbox_dir, app.clock, token(owner), app.settings.zone())
    return Pipeline(settings=app.settings, engine=app.engine, clock=app.clock, host=owner, reports=reports)


def build_daemon(app: App) -> Daemon:
    """A daemon on a fresh pipeline; call ``prepare`` first so folders and schema exist. Logs a warning
    when the database server may lose commits in a crash (see ``warn_if_commits_may_be_lost``).
    """
    from processor.daemon import Daemon  # noqa: PLC0415 (watchdog, APScheduler: for `run` only)

    warn_if_commits_may_be_lost(app)
    return Daemon(settings=app.settings, pipeline=build_pipeline(app))


def warn_if_commits_may_be_lost(app: App) -> None:
    """Log ``database_durability_weakened`` for each PostgreSQL setting (``fsync``, ``synchronous_commit``)
    that is off. wardbulk publishes a summary and archives the input right after the commit; a commit
    lost in a crash would leave a summary saying "completed" for changes the database no longer has.
    """
    for setting, value in settings_that_lose_commits(app.engine).items():
        log.warning("database_durability_weakened", setting=setting, value=value)

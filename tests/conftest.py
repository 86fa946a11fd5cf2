"""Shared fixtures: every database test runs on SQLite and on the machine's real PostgreSQL.

PostgreSQL comes from ``WARDBULK_TEST_POSTGRES_URL`` (default: the local server, trust auth). Each test
session creates its own database and drops it at the end. When the server is unreachable, PostgreSQL
tests are skipped on a developer machine but the session fails under CI (``CI`` set): CI must never
pass by skipping them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from processor.adapters.database.engine import build_engine
from processor.adapters.database.migrations import upgrade_to_head
from processor.adapters.database.models import Base
from processor.operations import registry  # noqa: F401  (every room's tables join Base.metadata)

pytest_plugins = ["tests.mail_server"]  # the real SMTP relay's fixtures, for any test that mails

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REPO_ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "postgresql")


def _server_url() -> URL:
    return make_url(os.environ.get("WARDBULK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def _postgres_unreachable() -> str | None:
    try:
        engine = create_engine(_server_url(), connect_args={"connect_timeout": 5})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {_server_url().render_as_string(hide_password=True)}: {exc}"
    return None


class PostgresServer:
    """Creates and drops databases on the test server (AUTOCOMMIT: CREATE DATABASE needs it)."""

    def __init__(self) -> None:
        self._admin = create_engine(_server_url(), isolation_level="AUTOCOMMIT")

    def create_database(self) -> URL:
        name = f"wardbulk_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return _server_url().set(database=name)

    def drop_database(self, url: URL) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))

    def close(self) -> None:
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    problem = _postgres_unreachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL and it is unreachable: {problem}", pytrace=False)
        pytest.skip(f"PostgreSQL unreachable (tests run on CI): {problem}")
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_session_url(postgres_server: PostgresServer) -> Iterator[URL]:
    """One migrated database for the whole test session; tests truncate what they wrote."""
    url = postgres_server.create_database()
    engine = build_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    yield url
    postgres_server.drop_database(url)


@dataclass(frozen=True)
class Database:
    """A migrated, empty database for one test: its URL (as text, for subprocesses) and an engine."""

    backend: str
    url: str
    engine: Engine


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The schema at head on SQLite (a file in tmp_path) and on PostgreSQL (emptied after the test)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wardbulk.sqlite3'}"
        engine = build_engine(url)
        upgrade_to_head(engine)
        yield Database("sqlite", url, engine)
        engine.dispose()
        return
    pg_url = request.getfixturevalue("postgres_session_url")
    engine = build_engine(pg_url)
    try:
        yield Database("postgresql", pg_url.render_as_string(hide_password=False), engine)
    finally:
        _truncate_all(engine)
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a database with no tables at all (for migration tests), on both backends."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url.render_as_string(hide_password=False)
    server.drop_database(url)


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
    """Run the real ``wardbulk`` command line in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WARDBULK_")}
    full_env.update(env or {})
    completed = subprocess.run(
        [sys.executable, "-m", "processor", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


@dataclass
class Workspace:
    """A wardbulk installation in tmp_path: folders, a migrated database, a pipeline on a real engine."""

    root: Path
    database: Database
    settings: Any
    app: Any

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def drop(self, operation: str, name: str, content: str | bytes, mtime: float | None = None) -> Path:
        """Write a file into inbox/<operation>/ the way a sender would (not atomically)."""
        path = self.inbox / operation / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def pipeline(self, **overrides: Any) -> Any:
        from processor.bootstrap import build_pipeline

        pipeline = build_pipeline(self.app)
        pipeline.backoff_s = 0.0
        for key, value in overrides.items():
            setattr(pipeline, key, value)
        return pipeline

    def run_once(self) -> Any:
        """Process everything in the inbox, as `wardbulk run --once` does, in this process."""
        from processor.bootstrap import build_daemon

        daemon = build_daemon(self.app)
        daemon.pipeline.backoff_s = 0.0
        daemon.run(once=True)
        return daemon

    def output(self, operation: str, stem: str, operation_id: int, kind: str) -> Path:
        return self.outbox / operation / f"{stem}.op{operation_id}.{kind}"

    def summary(self, operation: str, stem: str, operation_id: int) -> dict[str, Any]:
        import json

        return dict(json.loads(self.output(operation, stem, operation_id, "summary.json").read_text()))

    def rows(self, operation: str, stem: str, operation_id: int, kind: str) -> list[dict[str, str]]:
        import csv

        with self.output(operation, stem, operation_id, kind).open(encoding="utf-8-sig", newline="") as f:
            return list(csv.DictReader(f))

    def scalar(self, sql: str) -> Any:
        with self.database.engine.connect() as connection:
            return connection.execute(text(sql)).scalar()


def make_workspace(tmp_path: Path, database: Database, **settings_values: Any) -> Workspace:
    from processor.bootstrap import App, initialise
    from processor.settings import Settings

    values: dict[str, Any] = {
        "database_url": database.url,
        "inbox_dir": tmp_path / "inbox",
        "outbox_dir": tmp_path / "outbox",
        "archive_dir": tmp_path / "archive",
        "stability_window_s": 0,
    }
    values.update(settings_values)
    settings = Settings(**values)
    app = App(settings=settings, engine=database.engine)
    initialise(app, demo=True)
    return Workspace(tmp_path, database, settings, app)


@pytest.fixture
def workspace(tmp_path: Path, database: Database) -> Workspace:
    return make_workspace(tmp_path, database)

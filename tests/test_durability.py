"""A commit wardbulk reports is on disk: SQLite syncs every commit, and a PostgreSQL server that might
lose commits in a crash is reported at daemon start.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from structlog.testing import capture_logs

from processor.adapters.database.engine import build_engine, settings_that_lose_commits
from processor.bootstrap import build_app, warn_if_commits_may_be_lost
from processor.settings import Settings


def test_a_sqlite_connection_uses_wal_with_full_synchronous_commits(tmp_path: Path) -> None:
    """journal_mode WAL and synchronous FULL (2): under WAL, NORMAL can lose the last commits on power loss."""
    engine = build_engine(f"sqlite:///{tmp_path / 'wardbulk.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2
    finally:
        engine.dispose()
    assert settings_that_lose_commits(engine) == {}


@pytest.mark.postgres_only
def test_the_daemon_warns_when_postgresql_may_lose_commits(postgres_session_url: URL, tmp_path: Path) -> None:
    """A session with synchronous_commit off (here set through the URL) is reported, naming the setting."""
    url = postgres_session_url.update_query_dict({"options": "-c synchronous_commit=off"})
    app = build_app(Settings(database_url=url.render_as_string(hide_password=False), inbox_dir=tmp_path))
    try:
        with capture_logs() as logs:
            warn_if_commits_may_be_lost(app)
    finally:
        app.close()
    assert [(log["event"], log["setting"], log["value"]) for log in logs] == [
        ("database_durability_weakened", "synchronous_commit", "off")
    ]

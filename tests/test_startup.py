"""Start-up: each command loads only what it needs; the schema check skips Alembic when there is nothing to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from processor import cli
from processor.adapters.database import schema_version
from processor.adapters.database.engine import build_engine
from processor.adapters.database.migrations import downgrade_to, head_revision, upgrade_to_head
from processor.bootstrap import build_app, prepare
from processor.errors import DatabaseUnavailable
from processor.settings import CONFIG_ENV_VAR, Settings
from tests.conftest import REPO_ROOT, Database

HEAVY = (
    "sqlalchemy",
    "alembic",
    "pydantic_settings",
    "structlog",
    "rich",
    "watchdog",
    "apscheduler",
    "psycopg",
)


def modules_after(code: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT) -> set[str]:
    """The modules loaded once ``code`` has run in a fresh interpreter (packages and submodules)."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(completed.stdout.splitlines()[-1]))


def test_the_command_line_module_loads_no_database_settings_or_logging_code() -> None:
    """`wardbulk --version`, `--help` and `template` pay for click and the package, nothing heavier."""
    loaded = {name.split(".")[0] for name in modules_after("import processor.cli")}
    assert loaded.isdisjoint(HEAVY), loaded.intersection(HEAVY)


def test_the_command_line_names_the_same_config_variable_as_the_settings() -> None:
    assert cli.CONFIG_ENV_VAR == CONFIG_ENV_VAR


def test_processing_a_file_loads_neither_alembic_nor_the_daemon_nor_a_progress_bar(tmp_path: Path) -> None:
    """With the schema at head, `wardbulk process` needs no migration tooling, watcher or scheduler."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARDBULK_")}
    env |= {
        "WARDBULK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "WARDBULK_INBOX_DIR": str(tmp_path / "inbox"),
        "WARDBULK_OUTBOX_DIR": str(tmp_path / "outbox"),
        "WARDBULK_ARCHIVE_DIR": str(tmp_path / "archive"),
        "WARDBULK_LOG_FORMAT": "json",
    }
    subprocess.run([sys.executable, "-m", "processor", "init"], cwd=tmp_path, env=env, check=True)
    sample = tmp_path / "p.csv"
    sample.write_text("first_name,last_name,email\nAda,Lovelace,ada@example.org\n", encoding="utf-8")
    run = (
        "from processor.cli import main\n"
        "try:\n"
        f"    main(['process', {str(sample)!r}, '--operation', 'import_patients'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
    )
    loaded = modules_after(run, env=env, cwd=tmp_path)
    assert {"sqlalchemy", "processor.pipeline"} <= loaded  # it did process the file
    unwanted = {"alembic", "mako", "watchdog", "apscheduler.schedulers", "processor.daemon", "rich.progress"}
    assert loaded.isdisjoint(unwanted), loaded.intersection(unwanted)
    assert (tmp_path / "outbox" / "import_patients" / "p.op1.summary.json").is_file()


def test_the_shipped_head_is_read_from_the_scripts_as_alembic_reads_it() -> None:
    assert schema_version.shipped_head() is not None
    assert schema_version.shipped_head() == head_revision()


def test_a_script_that_is_not_a_plain_revision_leaves_the_decision_to_alembic(tmp_path: Path) -> None:
    (tmp_path / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n', encoding="utf-8")
    (tmp_path / "0002_b.py").write_text('revision: str = "0002"\ndown_revision = ("0001", "x")\n')
    assert schema_version.shipped_head(tmp_path) is None


def test_two_heads_leave_the_decision_to_alembic(tmp_path: Path) -> None:
    (tmp_path / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n', encoding="utf-8")
    (tmp_path / "0002_b.py").write_text('revision = "0002"\ndown_revision = "0001"\n', encoding="utf-8")
    (tmp_path / "0003_c.py").write_text("revision = '0003'\ndown_revision = '0001'\n", encoding="utf-8")
    assert schema_version.shipped_head(tmp_path) is None
    (tmp_path / "0003_c.py").write_text("revision = '0003'\ndown_revision = '0002'\n", encoding="utf-8")
    schema_version.shipped_head.cache_clear()
    assert schema_version.shipped_head(tmp_path) == "0003"


def test_an_empty_database_is_not_current_and_a_migrated_one_is(empty_database_url: str) -> None:
    engine = build_engine(empty_database_url)
    try:
        assert not schema_version.is_current(engine)
        upgrade_to_head(engine)
        assert schema_version.is_current(engine)
    finally:
        engine.dispose()


def test_a_database_at_an_older_revision_is_not_current(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        assert not schema_version.is_current(database.engine)
    finally:
        with database.engine.begin() as connection:
            connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
            )


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        inbox_dir=tmp_path / "inbox",
        outbox_dir=tmp_path / "outbox",
        archive_dir=tmp_path / "archive",
    )


def test_prepare_refuses_a_database_never_initialised_and_creates_nothing(
    tmp_path: Path, empty_database_url: str
) -> None:
    """Only `init` creates a database: prepare raises DatabaseUnavailable, no file, folder or table."""
    before = sorted(tmp_path.rglob("*"))
    app = build_app(_settings(tmp_path, empty_database_url))
    try:
        with pytest.raises(DatabaseUnavailable, match="is not initialised; run `wardbulk init` first"):
            prepare(app)
        assert schema_version.recorded_revisions(app.engine) is None
    finally:
        app.close()
    assert sorted(tmp_path.rglob("*")) == before


def test_prepare_migrates_a_database_at_an_older_revision_and_creates_the_folders(
    tmp_path: Path, empty_database_url: str
) -> None:
    engine = build_engine(empty_database_url)
    upgrade_to_head(engine)
    downgrade_to(engine, "0001")
    engine.dispose()
    app = build_app(_settings(tmp_path, empty_database_url))
    try:
        prepare(app)
        assert schema_version.is_current(app.engine)
        assert all(folder.is_dir() for folder in app.folders())
        prepare(app)  # at head: only the folders are checked
    finally:
        app.close()


@pytest.mark.parametrize("command", [["--version"], ["--help"], ["template", "import_patients"]])
def test_light_commands_still_work(command: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "processor", *command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout

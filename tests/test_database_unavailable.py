"""A database that cannot be reached, or was never initialised: every command that uses it exits 3 with
one line naming the database (password masked), without a traceback, and creates nothing: no database
file, no folder, no table. Only `init` creates a database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import CliResult, PostgresServer, run_cli

PASSWORD = "secretpw"
UNREACHABLE_URL = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/wardbulk"
INPUT = "{input}"  # replaced by the path of a CSV file outside the working directory
COMMANDS = {
    "run": ["run"],
    "run --once": ["run", "--once"],
    "process": ["process", INPUT, "--operation", "import_patients"],
    "report": ["report", "occupancy"],
    "ops list": ["ops", "list"],
    "ops show": ["ops", "show", "1"],
    "ops stats": ["ops", "stats"],
}
NOT_INITIALISED = "wardbulk: error: database {} is not initialised; run `wardbulk init` first"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """An empty working directory (the default configuration puts everything under it)."""
    path = tmp_path / "site"
    path.mkdir()
    return path


def run_command(name: str, site: Path, database_url: str | None) -> CliResult:
    """Run command ``name`` in ``site``; ``process`` gets a file from outside ``site``."""
    source = site.parent / "sender" / "patients.csv"
    source.parent.mkdir(exist_ok=True)
    source.write_text("first_name,last_name,email\nAna,Lee,ana@example.org\n", encoding="utf-8")
    args = [str(source) if arg == INPUT else arg for arg in COMMANDS.get(name, [name])]
    env = {"WARDBULK_DATABASE_URL": database_url} if database_url else None
    # A command that wrongly went on would never end (`run`): the timeout fails it instead.
    return run_cli(*args, cwd=site, env=env, timeout=30)


def the_one_line(result: CliResult) -> str:
    """The only line on stderr, once exit code 3 and the absence of a traceback are checked."""
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def tree(path: Path) -> list[Path]:
    return sorted(found.relative_to(path) for found in path.rglob("*"))


@pytest.mark.parametrize("command", [*COMMANDS, "init"])
def test_an_unreachable_postgresql_exits_3_with_one_line_without_the_password(
    command: str, site: Path
) -> None:
    """It exits 3 with one line naming the URL, password masked, and creates no file or folder."""
    line = the_one_line(run_command(command, site, UNREACHABLE_URL))
    prefix = "wardbulk: error: database postgresql://postgres:***@127.0.0.1:1/wardbulk is unreachable: "
    assert line.startswith(prefix), line
    assert len(line) > len(prefix)
    assert PASSWORD not in line
    assert tree(site) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_sqlite_file_is_not_initialised_and_is_not_created(command: str, site: Path) -> None:
    """With the default configuration and no `init`: exit 3, one line, and neither var/ nor its file."""
    line = the_one_line(run_command(command, site, None))
    assert line == NOT_INITIALISED.format("sqlite:///var/wardbulk.sqlite3")
    assert not (site / "var").exists()
    assert tree(site) == []


def test_a_missing_sqlite_file_in_a_missing_folder_is_not_created(site: Path, tmp_path: Path) -> None:
    """An absolute path: the folder it names is not created either."""
    database = tmp_path / "data" / "ward.sqlite3"
    line = the_one_line(run_command("ops list", site, f"sqlite:///{database}"))
    assert line == NOT_INITIALISED.format(f"sqlite:///{database}")
    assert not database.parent.exists()


def test_init_creates_the_sqlite_database_that_the_other_commands_then_use(site: Path) -> None:
    """`init` is the command that creates the file (and its folder); `ops list` then works."""
    assert run_cli("init", cwd=site).returncode == 0
    assert (site / "var" / "wardbulk.sqlite3").is_file()
    assert run_command("ops list", site, None).returncode == 0


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database with no table at all, named with a password (trust auth ignores it)."""
    url = postgres_server.create_database()
    yield url.set(password=PASSWORD).render_as_string(hide_password=False)
    postgres_server.drop_database(url)


def table_names(url: str) -> list[str]:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query)).scalars())
    finally:
        engine.dispose()


@pytest.mark.postgres_only
@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_postgresql_database_is_not_initialised_and_stays_empty(
    command: str, site: Path, empty_postgres_url: str
) -> None:
    """A database without alembic_version: exit 3, one line, no password, no table created."""
    line = the_one_line(run_command(command, site, empty_postgres_url))
    assert line == NOT_INITIALISED.format(make_url(empty_postgres_url).render_as_string(hide_password=True))
    assert PASSWORD not in line
    assert table_names(empty_postgres_url) == []
    assert tree(site) == []


def run_with_failing_history(error: str, site: Path) -> CliResult:
    """`wardbulk ops list` on an initialised database, its query raising SQLAlchemy's ``error``."""
    code = (
        "import sqlite3\n"
        "from sqlalchemy import exc\n"
        "import processor.adapters.database.history as history\n"
        "def fail(*args, **kwargs):\n"
        f"    raise exc.{error}('SELECT 1', {{}}, sqlite3.OperationalError('disk I/O error'))\n"
        "history.list_operations = fail\n"
        "from processor.cli import main\n"
        "main(['ops', 'list'])\n"
    )
    assert run_cli("init", cwd=site).returncode == 0
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARDBULK_")}
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def test_a_database_failing_in_the_middle_of_a_command_exits_3_with_one_line(site: Path) -> None:
    """An OperationalError from a command's query: exit 3, one line naming the database and the reason."""
    line = the_one_line(run_with_failing_history("OperationalError", site))
    assert line == (
        "wardbulk: error: database sqlite:///var/wardbulk.sqlite3 failed during the command: disk I/O error"
    )


def test_a_constraint_or_syntax_error_stays_an_internal_error(site: Path) -> None:
    """Other DB-API errors are wardbulk bugs, not an unavailable database: exit 70, traceback logged."""
    result = run_with_failing_history("ProgrammingError", site)
    assert result.returncode == 70, result.stderr
    assert "wardbulk: internal error" in result.stderr

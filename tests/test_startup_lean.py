"""Start-up of `wardbulk process`: what a one-row file does not load, and what the collector is spared."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from processor.cli.context import imports_uncollected
from tests.conftest import REPO_ROOT
from tests.test_startup import modules_after

# Loaded by none of the steps of processing a file; each was once part of every `wardbulk process`.
NOT_FOR_A_FILE = (
    "rich",  # structlog's pretty tracebacks; the CLI's tables and progress bar import it themselves
    "pygments",
    "attr",
    "apscheduler",
    "watchdog",
    "openpyxl",
    "alembic",
    "processor.daemon",
    "processor.reports.files",  # only an export file writes a report
    "processor.reports.queries",
)


def _among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The names in ``modules`` that are one of ``packages`` or inside one."""
    return sorted(name for name in modules if any(name == p or name.startswith(f"{p}.") for p in packages))


def _workspace_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARDBULK_")}
    return env | {
        "WARDBULK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "WARDBULK_INBOX_DIR": str(tmp_path / "inbox"),
        "WARDBULK_OUTBOX_DIR": str(tmp_path / "outbox"),
        "WARDBULK_ARCHIVE_DIR": str(tmp_path / "archive"),
    }


def test_the_command_line_module_loads_none_of_the_heavy_packages() -> None:
    loaded = modules_after("import processor.cli")
    assert not _among(loaded, ("rich", "apscheduler", "sqlalchemy", "openpyxl", "watchdog", "structlog"))


def test_processing_a_one_row_file_loads_neither_rich_nor_what_other_commands_need(tmp_path: Path) -> None:
    """Logging is configured (console format asked for) and the file applied, without those modules."""
    env = _workspace_env(tmp_path) | {"WARDBULK_LOG_FORMAT": "console"}
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
    assert {"structlog", "sqlalchemy", "processor.pipeline", "processor.notifying"} <= loaded
    assert not _among(loaded, NOT_FOR_A_FILE)
    assert (tmp_path / "outbox" / "import_patients" / "p.op1.summary.json").is_file()


def test_rich_is_there_for_the_command_line_once_logging_is_set_up() -> None:
    """structlog is imported with Rich hidden; Rich itself is importable afterwards, tables render."""
    code = (
        "import sys\n"
        "from processor.logs import configure_logging, get_logger\n"
        "configure_logging('INFO', 'console')\n"
        "get_logger('probe').info('probe_logged')\n"
        "assert 'rich' not in sys.modules\n"
        "from rich.console import Console\n"
        "from rich.table import Table\n"
        "table = Table('ward')\n"
        "table.add_row('W001')\n"
        "Console(width=40).print(table)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert "W001" in completed.stdout
    assert "probe_logged" in completed.stderr


def test_a_console_log_renders_tracebacks_as_plain_text_without_rich() -> None:
    code = (
        "from processor.logs import configure_logging, get_logger\n"
        "configure_logging('INFO', 'console')\n"
        "try:\n"
        "    raise ValueError('boom')\n"
        "except ValueError:\n"
        "    get_logger('probe').exception('probe_failed')\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert "Traceback (most recent call last):" in completed.stderr
    assert "ValueError: boom" in completed.stderr


def test_imports_run_with_the_collector_off_and_leave_it_as_it_was() -> None:
    assert gc.isenabled()
    with imports_uncollected():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        with imports_uncollected():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_imports_leave_objects_frozen_by_someone_else_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with imports_uncollected():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_command_ends_normally_with_the_heap_frozen_at_exit() -> None:
    """Freezing the heap at exit leaves every other exit handler running, and the command's output and code."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('earlier handler ran', file=sys.stderr))\n"
        "from processor.cli import main\n"
        "main(['template', 'import_patients'])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("first_name,")
    assert "earlier handler ran" in completed.stderr

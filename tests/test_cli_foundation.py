"""The command line as a user runs it: help, configuration check, init (with demo data)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from processor.adapters.database.engine import build_engine
from processor.adapters.database.models import Ward, WardBed
from tests.conftest import REPO_ROOT, run_cli

SCREEN_LINES = 40


def subcommand_paths() -> list[list[str]]:
    from processor.cli import cli

    paths: list[list[str]] = [[]]

    def walk(group: object, prefix: list[str]) -> None:
        for name, command in getattr(group, "commands", {}).items():
            paths.append([*prefix, name])
            walk(command, [*prefix, name])

    walk(cli, [])
    return paths


@pytest.mark.parametrize("path", subcommand_paths(), ids=lambda p: " ".join(p) or "wardbulk")
def test_every_command_explains_itself_in_one_screen(path: list[str], tmp_path: Path) -> None:
    result = run_cli(*path, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: wardbulk")
    assert len(result.stdout.splitlines()) <= SCREEN_LINES
    assert result.stderr == ""


def test_the_console_script_and_python_m_are_the_same_program(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    script = Path(sys.executable).with_name("wardbulk")
    assert script.exists() or shutil.which("wardbulk")
    via_script = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert via_script.stdout == run_cli("--version", cwd=tmp_path).stdout
    assert "wardbulk" in via_script.stdout


def test_config_check_prints_the_effective_configuration_with_secrets_masked(
    tmp_path: Path,
) -> None:
    env = {"WARDBULK_DATABASE_URL": "postgresql://ward:t0ps3cret@db.example/ward"}
    result = run_cli(
        "--config", str(REPO_ROOT / "config/wardbulk.toml"), "config", "check", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout
    assert 'database_url = "postgresql://ward:***@db.example/ward"' in result.stdout
    assert "operations.import_patients.on_row_error" in result.stdout
    assert "t0ps3cret" not in result.stdout + result.stderr


def test_a_bad_value_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    result = run_cli("config", "check", cwd=tmp_path, env={"WARDBULK_STABILITY_WINDOW_S": "soon"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "stability_window_s" in result.stderr and "WARDBULK_STABILITY_WINDOW_S" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_config_file_named_by_the_variable_exits_2(tmp_path: Path) -> None:
    result = run_cli("config", "check", cwd=tmp_path, env={"WARDBULK_CONFIG": "nope.toml"})
    assert result.returncode == 2
    assert result.stderr.strip() == "wardbulk: error: config file nope.toml does not exist"


def test_an_unknown_command_exits_2(tmp_path: Path) -> None:
    result = run_cli("frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command" in result.stderr


def count_rows(url: str) -> tuple[int, int]:
    engine = build_engine(url)
    with engine.connect() as connection:
        wards = connection.execute(select(func.count()).select_from(Ward)).scalar_one()
        beds = connection.execute(select(func.count()).select_from(WardBed)).scalar_one()
    engine.dispose()
    return wards, beds


def test_init_on_the_default_sqlite_creates_database_and_folders(tmp_path: Path) -> None:
    result = run_cli("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "wardbulk.sqlite3").is_file()
    for op in (
        "import_patients",
        "bulk_assignment",
        "bulk_discharge",
        "sync_beds",
        "export_report",
        "export_patients",
    ):
        assert (tmp_path / "inbox" / op).is_dir()
        assert (tmp_path / "outbox" / op).is_dir()
    assert (tmp_path / "outbox" / "reports").is_dir()
    assert count_rows(f"sqlite:///{tmp_path / 'var/wardbulk.sqlite3'}") == (0, 0)


def test_init_demo_adds_wards_and_beds_once_and_leaves_beds_in_use_alone(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = {"WARDBULK_DATABASE_URL": empty_database_url}
    first = run_cli("init", "--demo", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "demo data: 3 wards and 30 beds added" in first.stdout
    assert count_rows(empty_database_url) == (3, 30)

    engine = build_engine(empty_database_url)
    with engine.begin() as connection:
        connection.execute(update(WardBed).where(WardBed.code == "CARD-01").values(bed_number="X"))
    second = run_cli("init", "--demo", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert "schema already at revision" in second.stdout
    assert "demo data: 0 wards and 0 beds added" in second.stdout
    assert count_rows(empty_database_url) == (3, 30)
    with engine.connect() as connection:
        bed = connection.execute(select(WardBed.bed_number).where(WardBed.code == "CARD-01"))
        assert bed.scalar_one() == "X"
    engine.dispose()


def test_an_unreachable_database_exits_3_with_one_line(tmp_path: Path) -> None:
    env = {"WARDBULK_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = run_cli("init", cwd=tmp_path, env=env)
    assert result.returncode == 3
    assert result.stderr.startswith("wardbulk: error: database")
    assert "Traceback" not in result.stderr


def test_config_check_says_which_file_it_read_or_that_none_was(tmp_path: Path) -> None:
    """Run from the wrong folder, it says that no file was found instead of only "valid"."""
    nowhere = run_cli("config", "check", cwd=tmp_path)
    assert nowhere.returncode == 0
    assert nowhere.stdout.startswith(f"no configuration file: config/wardbulk.toml is not in {tmp_path}")
    config = REPO_ROOT / "config/wardbulk.toml"
    named = run_cli("--config", str(config), "config", "check", cwd=tmp_path)
    assert named.stdout.startswith(f"configuration file: {config}\nconfiguration is valid\n")


def test_config_check_warns_about_a_mistyped_variable(tmp_path: Path) -> None:
    result = run_cli("config", "check", cwd=tmp_path, env={"WARDBULK_STABILTY_WINDOW_S": "3"})
    assert result.returncode == 0
    assert result.stderr == (
        "wardbulk: warning: WARDBULK_STABILTY_WINDOW_S names no setting and is ignored; "
        "did you mean WARDBULK_STABILITY_WINDOW_S?\n"
    )

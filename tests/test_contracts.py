"""docs/contracts.md, the page other systems read, says what the code does: every command, fixed
environment variable, outbox name and error code it lists exists, and every one the code has is listed."""

from __future__ import annotations

import re

import click

from processor.adapters.folders import NOTIFICATIONS_FOLDER, REJECTED_FOLDER, REPORTS_FOLDER, UNKNOWN_FOLDER
from processor.adapters.outbox import OutboxFiles
from processor.adapters.retention import LATEST_SUFFIX
from processor.cli import cli
from processor.operations.registry import error_codes
from processor.reports.dashboard import DASHBOARD_NAME
from processor.settings import CONFIG_ENV_VAR, ENV_PREFIX, Settings
from tests.conftest import REPO_ROOT

PAGE = (REPO_ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of one ``## title`` section of the page."""
    return PAGE.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def first_column(title: str) -> list[str]:
    """The backticked first cell of every table row of a section."""
    return re.findall(r"^\| `([^`]+)` \|", section(title), re.MULTILINE)


def test_the_error_codes_listed_are_exactly_the_codes_wardbulk_writes() -> None:
    listed = first_column("Error codes")
    assert len(listed) == len(set(listed))
    assert set(listed) == error_codes()


def test_every_command_is_listed_and_every_listed_command_exists() -> None:
    def names(group: click.Group, prefix: str = "") -> set[str]:
        found = set()
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found |= names(command, f"{prefix}{name} ")
            else:
                found.add(prefix + name)
        return found

    listed = {
        re.sub(r"^wardbulk ((?:ops |config |audit )?[a-z]+).*$", r"\1", row)
        for row in first_column("Commands")
    }
    assert listed == names(cli)


def test_the_fixed_environment_variables_set_real_settings() -> None:
    listed = first_column("Environment variables")
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_ENV_VAR}
    assert set(listed) <= fields
    assert {"WARDBULK_DATABASE_URL", "WARDBULK_INBOX_DIR", "WARDBULK_OUTBOX_DIR"} <= set(listed)


def test_the_outbox_names_listed_are_the_ones_wardbulk_writes() -> None:
    listed = first_column("Outbox names")
    for kind in OutboxFiles.ALL_KINDS:
        folder = NOTIFICATIONS_FOLDER if kind == "notifications.csv" else "<op>"
        assert f"outbox/{folder}/<stem>.op<N>.{kind}" in listed
    assert f"outbox/<op>/{REJECTED_FOLDER}/<stem>.op<N>.csv" in listed
    assert f"outbox/{DASHBOARD_NAME}" in listed
    assert f"outbox/{UNKNOWN_FOLDER}/<name>.unknown.json" in listed
    assert f"outbox/{REPORTS_FOLDER}/<type>[-<ward>]{LATEST_SUFFIX}" in listed
    assert len(listed) == len(OutboxFiles.ALL_KINDS) + 5  # nothing listed that the code does not write

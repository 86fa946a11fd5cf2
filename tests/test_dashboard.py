"""outbox/dashboard.html: self-contained, escaped, filterable, linked, regenerated debounced; checked in a
real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest

from processor.reports.dashboard import Debouncer, refresh_dashboard
from tests.conftest import REPO_ROOT, Workspace

EVIL = "<img src=x onerror=alert(1)>.csv"
ARTIFACTS = REPO_ROOT / "test-artifacts"


def populated(ws: Workspace) -> Path:
    ws.drop("import_patients", EVIL, "first_name,last_name,email\nA,A,a@example.org\n")
    ws.drop("import_patients", "bad.csv", "first_name,last_name\nA,B\n")
    ws.drop("sync_beds", "beds.csv", "ward,bed_id\nICU,ICU-01\n")
    ws.run_once()
    return refresh_dashboard(ws.database.engine, ws.outbox, datetime.now(UTC))


def test_the_page_is_self_contained_and_escapes_file_names(workspace: Workspace) -> None:
    html = populated(workspace).read_text(encoding="utf-8")
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;.csv" in html
    assert not re.search(r"""(src|href)=["']?https?:""", html)  # no CDN, no network
    assert "<style>" in html and "<script>" in html and "<svg" in html


def test_names_that_would_be_misshown_are_escaped_and_their_links_lead_to_their_files(
    workspace: Workspace,
) -> None:
    """A right-to-left override, a newline and undecodable bytes in a file name are shown escaped (the
    page never reverses or splits a name), and the links of such a file lead to its derived outbox names."""
    content = b"first_name,last_name,email\nA,A,a@example.org\n"
    folder = workspace.inbox / "import_patients"
    (folder / "report\u202evsc.csv").write_bytes(content)
    with open(os.fsencode(folder) + b"/night\nshift\xff.csv", "wb") as handle:
        handle.write(content.replace(b"a@", b"b@"))
    workspace.run_once()
    html = refresh_dashboard(workspace.database.engine, workspace.outbox, datetime.now(UTC)).read_text(
        encoding="utf-8"
    )
    assert "\u202e" not in html and "report\\u202evsc.csv" in html
    assert "night\\x0ashift\\xff.csv" in html
    hrefs = [unquote(h.replace("&amp;", "&")) for h in re.findall(r'href="([^"]+)"', html)]
    assert len(hrefs) == 6 and all((workspace.outbox / href).is_file() for href in hrefs)


def test_links_point_only_to_files_that_exist(workspace: Workspace) -> None:
    html = populated(workspace).read_text(encoding="utf-8")
    hrefs = [unquote(h.replace("&amp;", "&")) for h in re.findall(r'href="([^"]+)"', html)]
    assert len(hrefs) == 9  # three operations, three files each
    assert all((workspace.outbox / href).is_file() for href in hrefs)


def test_a_burst_of_changes_regenerates_once_per_interval() -> None:
    now = [0.0]
    debouncer = Debouncer(5.0, lambda: now[0])
    assert not debouncer.due()  # nothing changed yet
    for _ in range(100):
        debouncer.changed()
    assert debouncer.due() and not debouncer.due()
    debouncer.changed()
    now[0] = 4.9
    assert not debouncer.due()
    now[0] = 5.0
    assert debouncer.due()


def test_a_daemon_run_writes_the_dashboard(workspace: Workspace) -> None:
    workspace.drop("import_patients", "p.csv", "first_name,last_name,email\nA,A,a@example.org\n")
    workspace.run_once()
    assert "p.csv" in (workspace.outbox / "dashboard.html").read_text(encoding="utf-8")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI requires Chromium for the dashboard test (.ci/run installs it)", pytrace=False)
        pytest.skip("Chromium is not installed")
    return found


def browse(page: Path, fragment: str, tmp_path: Path, *extra: str) -> str:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        *extra,
        f"{page.as_uri()}#{fragment}",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout


def visible_rows(dom: str) -> list[str]:
    rows = re.findall(r"<tr data-type=[^>]*>", dom)
    return [row for row in rows if " hidden" not in row]


def test_in_a_real_browser_the_page_shows_cards_and_rows_and_a_filter_narrows_the_table(
    workspace: Workspace, tmp_path: Path
) -> None:
    page = populated(workspace)
    everything = browse(page, "", tmp_path, "--dump-dom")
    assert len(visible_rows(everything)) == 3
    assert re.search(r'id="card-operations"><b>3</b>', everything)
    assert re.search(r'id="card-failed"><b>1</b>', everything)
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in everything
    hrefs = [unquote(h.replace("&amp;", "&")) for h in re.findall(r'href="([^"]+)"', everything)]
    assert len(hrefs) == 9 and all((page.parent / href).is_file() for href in hrefs)
    failed_only = browse(page, "status=failed", tmp_path, "--dump-dom")
    assert [re.search(r'data-status="(\w+)"', row).group(1) for row in visible_rows(failed_only)] == [
        "failed"
    ]
    imports = browse(page, "type=import_patients", tmp_path, "--dump-dom")
    assert len(visible_rows(imports)) == 2
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"dashboard-{workspace.database.backend}.png"
    browse(page, "", tmp_path, f"--screenshot={shot}", "--window-size=1400,900")
    assert shot.stat().st_size > 10_000

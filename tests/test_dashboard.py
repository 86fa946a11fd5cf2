"""outbox/dashboard.html: self-contained, escaped, filterable, linked, regenerated debounced; checked in a
real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from processor.core.operation_kinds import OperationType
from processor.reports.dashboard import refresh_dashboard
from processor.reports.dashboard_worker import Debouncer
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


def registered(ws: Workspace, name: str, created: datetime) -> int:
    """An operation registered (pending) at ``created``."""
    from processor.adapters.database import operation_records as records

    new = records.NewOperation(OperationType.IMPORT_PATIENTS, name, None, "tester", "host:1")
    return records.register(ws.database.engine, new, created)


def table_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r"<tr data-type=[^>]*><td>(\d+)</td>", html)]


def test_the_table_holds_the_last_30_days_and_says_how_to_list_the_rest(workspace: Workspace) -> None:
    """The cards count all time; the table stays small, and says what it left out and how to see it."""
    now = datetime.now(UTC)
    old = registered(workspace, "old.csv", now - timedelta(days=40))
    recent = [registered(workspace, f"r{n}.csv", now - timedelta(days=1)) for n in range(3)]
    html = refresh_dashboard(workspace.database.engine, workspace.outbox, now).read_text(encoding="utf-8")
    assert table_ids(html) == recent[::-1]
    assert re.search(r'id="card-operations"><b>4</b>', html)
    assert f"wardbulk ops list --before {recent[0]}" in html and old not in table_ids(html)


def test_the_table_is_capped_and_says_so(workspace: Workspace) -> None:
    now = datetime.now(UTC)
    ids = [registered(workspace, f"r{n}.csv", now) for n in range(3)]
    html = refresh_dashboard(workspace.database.engine, workspace.outbox, now, limit=2).read_text(
        encoding="utf-8"
    )
    assert table_ids(html) == ids[:0:-1]
    assert "(3 in that time); 1 older or more are left out" in html
    assert f"wardbulk ops list --before {ids[1]}" in html


def test_a_report_request_links_to_the_report_it_wrote(workspace: Workspace) -> None:
    workspace.drop("export_report", "want.csv", "report_type\noccupancy\n")
    workspace.drop("export_patients", "go", "")
    workspace.run_once()
    html = (workspace.outbox / "dashboard.html").read_text(encoding="utf-8")
    reports = [unquote(h) for h in re.findall(r'href="(reports/[^"]+)">report<', html)]
    assert len(reports) == 2 and all((workspace.outbox / href).is_file() for href in reports)


def test_the_page_reloads_itself_while_open_and_keeps_its_filters() -> None:
    """Every minute, unless a detail panel is open; the filters live in the address, so a reload keeps
    them."""
    from processor.reports.dashboard import SCRIPT

    assert "location.reload()" in SCRIPT and "details[open]" in SCRIPT
    assert "history.replaceState" in SCRIPT


def test_the_worker_builds_off_the_callers_thread_once_per_burst_and_once_more_on_close() -> None:
    from processor.reports.dashboard_worker import DashboardWorker

    started, release, built = threading.Event(), threading.Event(), []

    def slow_build() -> None:
        started.set()
        release.wait(5)
        built.append(threading.current_thread().name)

    worker = DashboardWorker(slow_build, 0.0, time.monotonic)
    worker.start()
    began = time.monotonic()
    worker.changed()
    assert started.wait(5)
    for _ in range(100):  # a burst while a build is running: the caller never waits for it
        worker.changed()
    assert time.monotonic() - began < 1.0
    release.set()
    worker.close()
    assert built[0] == "wardbulk-dashboard"
    assert 2 <= len(built) <= 3  # the first build, then the burst coalesced (and close's, if still due)


def test_a_failing_build_is_logged_and_tried_again_on_close() -> None:
    from processor.reports.dashboard_worker import DashboardWorker

    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("outbox unwritable")

    worker = DashboardWorker(flaky, 3600.0, time.monotonic)
    worker.start()
    worker.changed()
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.close()
    assert len(calls) == 2


def test_the_headline_gives_the_file_success_rate_first_and_the_record_rate_beside_it(
    workspace: Workspace,
) -> None:
    """Two good files and one rejected: 66.7% of files, although every record of the good ones went in."""
    html = populated(workspace).read_text(encoding="utf-8")
    assert '<b id="file-rate">66.7% of files succeeded</b> (1 failed of 3 finished); 100.0% of their' in html


def test_a_build_that_keeps_failing_is_not_retried_in_a_busy_loop() -> None:
    """With no debounce at all, a failing build is tried again only every few seconds, not at full CPU."""
    from processor.reports.dashboard_worker import DashboardWorker

    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise OSError("outbox unwritable")

    worker = DashboardWorker(broken, 0.0, time.monotonic)
    worker.start()
    worker.changed()
    time.sleep(0.5)
    assert 1 <= len(calls) <= 2
    worker._stopping.set()  # stop without close's final attempt
    worker._wake.set()


def test_a_page_that_takes_long_to_build_is_rebuilt_less_often() -> None:
    """Years of history make a slow page: the pause after a build grows with it, so the page never
    takes more than about a tenth of a core from file processing."""
    from processor.reports.dashboard_worker import LOAD_FACTOR, DashboardWorker

    worker = DashboardWorker(lambda: time.sleep(0.05), 0.0, time.monotonic)
    worker.start()
    worker.changed()
    worker.close()
    assert worker._debouncer.interval_s >= LOAD_FACTOR * 0.05

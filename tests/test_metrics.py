"""Prometheus metrics (issue 15): files, records, durations, backlog and daemons, read from the database at
each scrape; parsed here with prometheus_client's own parser, from the command line, a textfile and the
daemon's HTTP server."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from processor.adapters.database.tallies import bucket_of
from processor.metrics import BOUNDS_S, _cumulative, exposition
from tests.conftest import Database, Workspace, make_workspace, run_cli
from tests.mail_server import free_port
from tests.test_daemon_e2e import DaemonRun, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample by name and sorted labels (the parser refuses anything not in the text format)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[name, tuple(sorted(labels.items()))]


def processed(tmp_path: Path, database: Database) -> Workspace:
    workspace = make_workspace(tmp_path, database)
    workspace.drop(
        "import_patients", "good.csv", "first_name,last_name,email\nAnn,Lee,ann@example.org\nBob,Ray,bad\n"
    )
    workspace.drop("import_patients", "refused.csv", "first_name\nAnn\n")
    (workspace.inbox / "import_patients" / "validate" / "try.csv").write_text(
        "first_name,last_name,email\nCy,Fox,cy@example.org\n"
    )
    workspace.run_once()
    return workspace


def test_files_records_and_durations_are_counted_by_operation_and_outcome(
    tmp_path: Path, database: Database
) -> None:
    workspace = processed(tmp_path, database)
    workspace.drop("import_patients", "waiting.csv", "first_name,last_name,email\nDi,Ng,di@example.org\n")
    text = exposition(database.engine, workspace.settings).decode()
    found = samples(text)
    assert value(found, "wardbulk_files_total", operation="import_patients", status="completed") == 1
    assert value(found, "wardbulk_files_total", operation="import_patients", status="failed") == 1
    assert value(found, "wardbulk_files_total", operation="import_patients", status="validated") == 1
    assert value(found, "wardbulk_records_total", operation="import_patients", outcome="successful") == 1
    assert (
        value(found, "wardbulk_records_total", operation="import_patients", outcome="failed") == 1
    )  # dry run not
    completed = {"operation": "import_patients", "status": "completed"}
    assert value(found, "wardbulk_file_duration_seconds_count", **completed) == 1
    assert value(found, "wardbulk_file_duration_seconds_bucket", le="+Inf", **completed) == 1
    assert value(found, "wardbulk_file_duration_seconds_sum", **completed) > 0
    assert value(found, "wardbulk_last_success_timestamp_seconds", operation="import_patients") > 1.7e9
    assert value(found, "wardbulk_inbox_files") == 1
    assert value(found, "wardbulk_database_up") == 1
    assert value(found, "wardbulk_inbox_readable") == 1
    assert value(found, "wardbulk_daemons_running") == 0  # run_once ended: stopped cleanly
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any(word in line for line in lines for word in ("Ann", "good", "waiting"))  # no cell, no name


def test_the_histograms_buckets_are_exact_at_the_tallies_edges() -> None:
    """Each le bound is an edge of the tallies' buckets: a duration just under a bound counts in it, one
    at the bound in the next (the tallies' buckets are half-open); the sum is within half a bucket."""
    durations_us = [9_999, 10_000, 999_999, 1_000_000, 7_200_000_000]
    found = [(bucket_of(us), 1) for us in durations_us]
    counts, total_s = _cumulative(found)
    by_bound = dict(counts)
    assert (by_bound["0.01"], by_bound["0.05"], by_bound["1"], by_bound["5"], by_bound["1800"]) == (
        1,
        2,
        3,
        4,
        4,
    )
    assert by_bound["+Inf"] == 5
    assert [bound for bound, _ in counts] == [f"{b:g}" for b in BOUNDS_S] + ["+Inf"]
    half_widths_s = 3 * 0.0005 + 0.005 + 5.0  # 1 ms buckets below 1 s, 10 ms to 10 s, 10 s to 10,000 s
    assert abs(total_s - sum(durations_us) / 1e6) <= half_widths_s + 1e-9


def test_wardbulk_metrics_writes_a_textfile_for_node_exporter(tmp_path: Path, database: Database) -> None:
    processed(tmp_path, database)
    env = {
        "WARDBULK_DATABASE_URL": database.url,
        "WARDBULK_INBOX_DIR": str(tmp_path / "inbox"),
        "WARDBULK_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    written = run_cli("metrics", "--textfile", str(tmp_path / "wardbulk.prom"), cwd=tmp_path, env=env)
    assert written.returncode == 0, written.stderr
    found = samples((tmp_path / "wardbulk.prom").read_text())
    assert value(found, "wardbulk_files_total", operation="import_patients", status="completed") == 1
    printed = run_cli("metrics", cwd=tmp_path, env=env)
    assert samples(printed.stdout).keys() == found.keys()


def test_the_daemon_serves_the_metrics_at_its_metrics_address(
    tmp_path: Path, empty_database_url: str
) -> None:
    port = free_port()
    daemon = DaemonRun(tmp_path, empty_database_url, WARDBULK_METRICS_ADDRESS=f"127.0.0.1:{port}")
    try:
        daemon.start()
        (daemon.inbox() / "p.csv").write_text("first_name,last_name,email\nAnn,Lee,ann@example.org\n")
        wait_for(lambda: "p" in daemon.summaries(), what="p.csv's summary")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            found = samples(response.read().decode())
        assert value(found, "wardbulk_files_total", operation="import_patients", status="completed") == 1
        assert value(found, "wardbulk_daemons_running") == 1
    finally:
        daemon.stop_all()


def test_an_unreadable_database_or_inbox_is_a_metric_not_a_silence(tmp_path: Path) -> None:
    env = {
        "WARDBULK_DATABASE_URL": "postgresql://wardbulk@127.0.0.1:9/none",
        "WARDBULK_INBOX_DIR": str(tmp_path / "gone"),
    }
    printed = run_cli("metrics", cwd=tmp_path, env=env)
    assert printed.returncode == 0, printed.stderr
    found = samples(printed.stdout)
    assert (value(found, "wardbulk_database_up"), value(found, "wardbulk_inbox_readable")) == (0, 0)

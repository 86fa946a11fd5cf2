"""Alerts (issue 15): a failed file, a file with too many failed rows, a daemon restarted after an unclean
stop, a file waiting too long in a real inbox, a sender silent for too many working hours (operations in
the real database, a fake "now" across a weekend and DST changes), sent by e-mail (a real SMTP server:
aiosmtpd, with STARTTLS and a login) and by webhook (a real HTTP receiver on 127.0.0.1); throttled per
rule, sender and type, periodic rules raised once per episode; a failing channel is retried and never
holds a file back nor another channel's alerts; no alert carries a cell's value."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from processor.adapters.alert_channels import ChannelError, send
from processor.adapters.database.engine import build_engine
from processor.adapters.database.operation_records import Counts
from processor.alert_settings import AlertSettings, WebhookChannel
from processor.alerting import Alert, Alerter
from processor.core.operation_types import OperationStatus
from processor.pipeline import FileOutcome
from tests.conftest import Database, make_workspace, run_cli
from tests.mail_server import Mailbox, free_port, relay_channel
from tests.test_daemon_e2e import DaemonRun, wait_for

BAD_HEADER = "first_name\nAnn-Secret\n"  # refused as a whole: missing-label
ONE_BAD_ROW = "first_name,last_name,email\nAnn,Lee,ann@example.org\nBob,Ray,bob-secret-value\n"


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint: keeps each JSON body; answers with the next status of ``statuses``."""

    bodies: list[dict[str, Any]]
    statuses: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.statuses.pop(0) if self.statuses else 204
        if status < 300:
            self.bodies.append(json.loads(body))
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/moved")  # urllib would follow it as a GET, without the alert
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("Handler", (Receiver,), {"bodies": [], "statuses": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()


def test_a_failed_file_is_mailed_over_starttls_with_a_login_and_no_cell_value(
    tmp_path: Path,
    database: Database,
    smtp_server: tuple[int, Mailbox],
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, mailbox = smtp_server
    monkeypatch.setenv("WARDS_SMTP_PASSWORD", "s3cret")
    channel = relay_channel(port, certificate, username="ward", password_env="WARDS_SMTP_PASSWORD")
    workspace = make_workspace(tmp_path, database, alerts={"channels": [channel]})
    workspace.drop("import_patients", "adt.csv", BAD_HEADER)
    workspace.run_once()  # its end sends what is queued
    [message] = mailbox.messages
    assert "Subject: wardbulk: import_patients file adt.csv failed (missing-label)" in message
    assert "operation_id: 1" in message and "rule: file_failed" in message
    assert "Ann-Secret" not in message and "s3cret" not in message


def test_too_many_failed_rows_are_posted_to_the_webhook(
    tmp_path: Path, database: Database, webhook: tuple[str, type[Receiver]]
) -> None:
    url, receiver = webhook
    workspace = make_workspace(tmp_path, database, alerts={"channels": [{"kind": "webhook", "url": url}]})
    workspace.drop("import_patients", "half.csv", ONE_BAD_ROW)
    workspace.drop("import_patients", "fine.csv", "first_name,last_name,email\nCy,Fox,cy@example.org\n")
    workspace.run_once()
    [alert] = receiver.bodies
    assert (alert["rule"], alert["failed_records"], alert["total_records"]) == ("error_rate", 1, 2)
    assert alert["text"] == "wardbulk: 1 of 2 rows of import_patients file half.csv failed"
    assert "bob-secret-value" not in json.dumps(alert)


def recording(
    settings: AlertSettings, clock: list[float], waits: tuple[float, ...] = ()
) -> tuple[Alerter, list[Any]]:
    sent: list[Any] = []

    def sender(channel: Any, subject: str, fields: dict[str, Any]) -> None:
        sent.append((channel.kind, subject, fields))

    return Alerter(settings, sender, clock=lambda: clock[0], retry_waits_s=waits), sent


def outcome(status: str, failed: int = 0, total: int = 0, operation_id: int = 1) -> FileOutcome:
    return FileOutcome(
        operation_id, OperationStatus(status), None, Counts(total, total - failed, failed), None
    )


def test_repeats_are_throttled_per_rule_sender_and_type_and_reported_when_the_window_ends() -> None:
    settings = AlertSettings(
        channels=[WebhookChannel(kind="webhook", url="http://127.0.0.1:9/x")], throttle_minutes=60
    )
    clock = [0.0]
    alerter, sent = recording(settings, clock)
    alerter.start()
    failed = {"operation": "import_patients", "file": "a.csv", "error_code": "missing-label", "sender": "lab"}
    for _ in range(3):
        alerter.file_finished(failed, outcome("failed"), dry_run=False)
    alerter.file_finished({**failed, "sender": "adt"}, outcome("failed"), dry_run=False)  # another sender
    alerter.file_finished(failed, outcome("failed"), dry_run=True)  # a dry run alerts nobody
    wait_for(lambda: len(sent) == 2, what="the first alerts")
    clock[0] = 3601.0  # the window ends with no later failure: its two repeats are reported all the same
    wait_for(lambda: len(sent) == 3, what="the held-back count")
    alerter.close()
    assert [(fields["sender"], fields.get("held_back")) for _, _, fields in sent] == [
        ("lab", None),
        ("adt", None),
        ("lab", 2),
    ]
    assert sent[2][1].endswith("(and 2 more like it since the last alert)")


def test_repeats_still_held_back_at_shutdown_are_reported() -> None:
    settings = AlertSettings(channels=[WebhookChannel(kind="webhook", url="http://127.0.0.1:9/x")])
    alerter, sent = recording(settings, [0.0])
    alerter.start()
    failed = {"operation": "bulk_discharge", "file": "d.csv", "error_code": "row-errors", "sender": None}
    for operation_id in range(30):
        alerter.file_finished({**failed, "operation_id": operation_id}, outcome("failed"), dry_run=False)
    alerter.close()
    assert [fields.get("held_back") for _, _, fields in sent] == [None, 29]


def test_a_failing_channel_is_retried_and_then_given_up_without_holding_anything(
    webhook: tuple[str, type[Receiver]],
) -> None:
    url, receiver = webhook
    receiver.statuses.extend([500, 503])  # two failures, then taken
    alerter = Alerter(
        AlertSettings(channels=[WebhookChannel(kind="webhook", url=url)]), retry_waits_s=(0.05, 0.05)
    )
    alerter.start()
    alerter.raise_alert(Alert("file_failed", ("-", "import_patients"), "subject", {"operation_id": 7}))
    wait_for(lambda: len(receiver.bodies) == 1, timeout=10, what="the third attempt")
    receiver.statuses.extend([500] * 5)  # never taken: given up after the retries, logged
    alerter.raise_alert(Alert("file_failed", ("-", "bulk_discharge"), "subject", {"operation_id": 8}))
    alerter.close(timeout_s=5)
    assert [body["operation_id"] for body in receiver.bodies] == [7]


def test_a_daemon_restarted_after_a_kill_says_so(
    tmp_path: Path, empty_database_url: str, webhook: tuple[str, type[Receiver]]
) -> None:
    url, receiver = webhook
    channels = json.dumps([{"kind": "webhook", "url": url}])
    daemon = DaemonRun(tmp_path, empty_database_url, WARDBULK_ALERTS__CHANNELS=channels)
    try:
        first = daemon.start()
        first.kill()
        first.wait()
        daemon.start()
        wait_for(lambda: any(body["rule"] == "unclean_start" for body in receiver.bodies), what="the alert")
        [alert] = [body for body in receiver.bodies if body["rule"] == "unclean_start"]
        assert (alert["daemons"], "last_heartbeat" in alert) == (1, True)
        daemon.stop_all()
        restarted = daemon.start()  # the second daemon was killed too; the first is not reported again
        wait_for(lambda: sum(body["rule"] == "unclean_start" for body in receiver.bodies) == 2, what="2nd")
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0
        assert [body["daemons"] for body in receiver.bodies if body["rule"] == "unclean_start"] == [1, 1]
    finally:
        daemon.stop_all()


def test_a_login_without_a_password_source_is_refused_by_config_check() -> None:
    smtp = {"kind": "smtp", "host": "relay", "sender": "a@b.example", "recipients": ["c@d.example"]}
    with pytest.raises(ValueError, match="exactly one of password_env and password_file"):
        AlertSettings(channels=[{**smtp, "username": "ward"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="url"):
        AlertSettings(channels=[{"kind": "webhook", "url": "ftp://x"}])  # type: ignore[list-item]


def test_a_redirect_is_not_a_delivery(webhook: tuple[str, type[Receiver]]) -> None:
    url, receiver = webhook
    receiver.statuses.append(302)
    with pytest.raises(ChannelError, match="HTTP 302"):
        send(WebhookChannel(kind="webhook", url=url), "subject", {"rule": "file_failed"})


def test_a_login_is_never_sent_in_cleartext_and_webhook_urls_are_not_printed() -> None:
    smtp = {"kind": "smtp", "host": "relay", "sender": "a@b.example", "recipients": ["c@d.example"]}
    with pytest.raises(ValueError, match="cleartext"):
        AlertSettings(channels=[{**smtp, "tls": "none", "username": "u", "password_env": "P"}])  # type: ignore[list-item]
    from processor.settings import Settings

    hook = {"kind": "webhook", "url": "https://user:pw@hooks.example/services/T0/SECRET?token=x"}
    shown = json.dumps(Settings(alerts={"channels": [hook]}).effective())
    assert "SECRET" not in shown and "pw" not in shown and "https://hooks.example/***" in shown


def test_a_scheduled_report_is_mailed_as_an_attachment_over_starttls(
    tmp_path: Path,
    database: Database,
    smtp_server: tuple[int, Mailbox],
    certificate: tuple[Path, Path],
) -> None:
    port, mailbox = smtp_server
    channel = relay_channel(port, certificate)
    schedule = {"report": "occupancy", "every": "1h", "mail_to": ["ward-manager@hospital.example"]}
    workspace = make_workspace(tmp_path, database, alerts={"channels": [channel]}, schedules=[schedule])
    from processor.bootstrap import build_daemon

    build_daemon(workspace.app).companions.scheduled_report(workspace.settings.schedules[0])
    [message] = mailbox.messages
    assert "To: ward-manager@hospital.example" in message
    assert 'filename="occupancy-' in message and "Content-Type: text/csv" in message
    [report] = (workspace.outbox / "reports").glob("occupancy-2*.csv")  # still in the outbox too
    assert f'filename="{report.name}"' in message


def test_a_report_is_never_mailed_without_tls() -> None:
    from processor.settings import Settings

    relay = {
        "kind": "smtp",
        "host": "relay",
        "tls": "none",
        "sender": "a@b.example",
        "recipients": ["c@d.example"],
    }
    schedule = {"report": "patient_list", "every": "1h", "mail_to": ["e@f.example"]}
    with pytest.raises(ValueError, match="with tls = 'starttls' or 'implicit'"):
        Settings(alerts={"channels": [relay]}, schedules=[schedule])


def test_a_dead_channel_does_not_delay_a_webhook(webhook: tuple[str, type[Receiver]]) -> None:
    """A mail server that refuses every connection is retried for minutes (1, 5, 30, 120 s) on its own
    thread; the webhook listed after it gets every alert at once, and stopping cuts the retries short."""
    url, receiver = webhook
    dead_port = free_port()  # closed again: nothing listens there
    dead = {"kind": "smtp", "host": "127.0.0.1", "port": dead_port, "tls": "none",
            "sender": "a@b.example", "recipients": ["c@d.example"]}  # fmt: skip
    settings = AlertSettings(channels=[dead, {"kind": "webhook", "url": url}])  # type: ignore[list-item]
    alerter = Alerter(settings)
    alerter.start()
    started = time.monotonic()
    for operation_id, operation in enumerate(("import_patients", "bulk_discharge", "sync_beds")):
        alerter.raise_alert(Alert("file_failed", ("-", operation), "subject", {"operation_id": operation_id}))
    wait_for(lambda: len(receiver.bodies) == 3, timeout=3, what="the webhook's alerts")
    assert time.monotonic() - started < 3  # not behind the dead server's first retry waits (1 + 5 s)
    alerter.close(timeout_s=5)
    assert time.monotonic() - started < 5


def record_to(sent: list[dict[str, Any]]) -> Any:
    def sender(_channel: Any, subject: str, fields: dict[str, Any]) -> None:
        sent.append({"text": subject, **fields})

    return sender


def checks_of(settings: Any, engine: Any, now: list[datetime], owner: str = "host-a:1:1:1") -> Any:
    """The periodic checks of one daemon, alerts recorded instead of sent, its clock ``now[0]``."""
    from processor.alert_checks import AlertChecks

    sent: list[dict[str, Any]] = []
    alerter = Alerter(settings.alerts, record_to(sent), retry_waits_s=())
    alerter.start()
    return AlertChecks(settings, engine, alerter, lambda: now[0], owner), sent


def closed(checks: Any) -> None:
    checks.alerter.close()


def add_operation(engine: Any, sender: str | None, created_at: datetime, status: str = "completed") -> None:
    from sqlalchemy import insert

    from processor.adapters.database.models import BulkOperation

    row = {"operation_type": "import_patients", "status": status, "created_at": created_at,
           "input_file": "LAB_1.csv", "sender": sender}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(BulkOperation), row)


WATCHING = {"channels": [{"kind": "webhook", "url": "http://127.0.0.1:9/x"}], "throttle_minutes": 0}


def test_a_file_left_in_the_inbox_is_alerted_once_and_by_one_daemon(
    tmp_path: Path, database: Database
) -> None:
    workspace = make_workspace(
        tmp_path, database, alerts=WATCHING, senders=[{"name": "lab", "files": ["LAB_*.csv"]}]
    )
    stuck = workspace.drop("import_patients", "LAB_stuck.csv", BAD_HEADER)
    year_ago = time.time() - 365 * 86400
    workspace.drop("bulk_discharge", "copied.csv", "patient_id\nP-Secret\n", mtime=year_ago)
    now = [datetime.now(UTC)]
    first, sent = checks_of(workspace.settings, database.engine, now)
    second, sent_by_second = checks_of(workspace.settings, database.engine, now, owner="host-b:2:2:2")
    first.run()  # a copy keeping an old modification time has not waited a year: it just came
    assert sent == []
    now[0] += timedelta(minutes=31)
    first.run()
    first.run()  # still waiting: not alerted again
    second.run()  # another daemon on the same database: the episodes are taken
    closed(first)
    closed(second)
    assert sent_by_second == []
    by_file = {alert["file"]: alert for alert in sent}
    assert sorted(by_file) == ["LAB_stuck.csv", "copied.csv"]
    alert = by_file["LAB_stuck.csv"]
    assert (alert["rule"], alert["state"], alert["sender"], alert["folder"]) == (
        "file_waiting", "waiting", "lab", "import_patients",
    )  # fmt: skip
    assert alert["waiting_minutes"] == 31
    assert alert["text"] == "wardbulk: import_patients file LAB_stuck.csv has waited 31 min in the inbox"
    assert "Secret" not in json.dumps(sent)
    assert stuck.exists()  # looking never touches a file


def test_a_file_that_never_stops_growing_is_alerted_from_when_it_was_first_seen(
    tmp_path: Path, database: Database
) -> None:
    workspace = make_workspace(tmp_path, database, alerts={**WATCHING, "waiting_minutes": 0.02})  # 1.2 s
    growing = workspace.drop("import_patients", "growing.csv", "first_name,last_name,email\n")
    now = [datetime.now(UTC)]
    checks, sent = checks_of(workspace.settings, database.engine, now)
    checks.run()
    deadline = time.monotonic() + 1.5
    with growing.open("a") as handle:
        while time.monotonic() < deadline:  # written to all along: its ctime stays fresh
            handle.write("Ann,Lee,ann@example.org\n")
            handle.flush()
            time.sleep(0.1)
    now[0] = datetime.now(UTC)
    checks.run()
    closed(checks)
    assert [alert["file"] for alert in sent] == ["growing.csv"]


def test_a_file_in_progress_far_too_long_is_alerted_once(tmp_path: Path, database: Database) -> None:
    workspace = make_workspace(tmp_path, database, alerts={**WATCHING, "processing_minutes": 120})
    now = [datetime(2026, 12, 3, 12, 0, tzinfo=UTC)]
    add_operation(database.engine, "lab", now[0] - timedelta(minutes=121), status="processing")
    add_operation(database.engine, "lab", now[0] - timedelta(minutes=119), status="processing")
    add_operation(database.engine, "lab", now[0] - timedelta(hours=5), status="completed")
    checks, sent = checks_of(workspace.settings, database.engine, now)
    checks.run()
    checks.run()
    closed(checks)
    [alert] = sent
    assert (alert["state"], alert["operation_id"], alert["in_progress_minutes"]) == ("in_progress", 1, 121)
    assert alert["text"] == (
        "wardbulk: import_patients file LAB_1.csv (operation 1) has been in progress for 121 min"
    )


AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def at(*wall: int) -> datetime:
    """An instant given as Amsterdam wall-clock time."""
    return datetime(*wall, tzinfo=AMSTERDAM).astimezone(UTC)  # type: ignore[misc]


def test_a_silent_sender_counts_working_hours_only_across_a_weekend_and_a_dst_change(
    tmp_path: Path, database: Database
) -> None:
    """Working hours 07:00-19:00, Monday to Friday, in Amsterdam. The last file came on Friday 27 March
    2026 at 18:30; on Sunday the clocks went forward. Monday 10:30 (CEST) is 4 working hours later: 30
    minutes on Friday, 3.5 on Monday, and none in the weekend."""
    lab = {"name": "lab", "files": ["LAB_*.csv"], "silent_hours": 4}
    senders = [lab, {"name": "quiet", "files": ["Q_*.csv"]}]  # no silent_hours: never watched
    workspace = make_workspace(
        tmp_path, database, alerts=WATCHING, senders=senders, timezone="Europe/Amsterdam"
    )
    add_operation(database.engine, "lab", at(2026, 3, 27, 18, 30), status="failed")  # any status counts
    now = [at(2026, 3, 30, 9, 0)]
    checks, sent = checks_of(workspace.settings, database.engine, now)
    checks.run()  # 2.5 working hours
    now[0] = at(2026, 3, 30, 10, 29)
    checks.run()
    assert sent == []
    now[0] = at(2026, 3, 30, 10, 31)  # with Friday's offset (+1 h) this would still look like 09:31
    checks.run()
    now[0] = at(2026, 3, 30, 12, 0)
    checks.run()  # the same silence: not again
    add_operation(database.engine, "lab", at(2026, 3, 30, 12, 0))  # a file: the silence ends
    now[0] = at(2026, 3, 30, 15, 59)
    checks.run()
    now[0] = at(2026, 3, 30, 16, 1)
    checks.run()  # a new silence
    closed(checks)
    assert [(alert["sender"], alert["last_file_at"]) for alert in sent] == [
        ("lab", "2026-03-27T17:30:00+00:00"),
        ("lab", "2026-03-30T10:00:00+00:00"),
    ]
    assert sent[0]["text"] == (
        "wardbulk: no file from lab for 4 working hours (the last at Fri 2026-03-27 18:30 CET)"
    )
    assert sent[0]["rule"] == "sender_silent" and sent[0]["timezone"] == "Europe/Amsterdam"


def test_a_sender_with_no_file_yet_counts_from_when_a_daemon_first_watched_it(
    tmp_path: Path, database: Database
) -> None:
    senders = [{"name": "ward7", "folder": "ward7", "silent_hours": 1}]
    workspace = make_workspace(
        tmp_path, database, alerts=WATCHING, senders=senders, timezone="Europe/Amsterdam"
    )
    now = [at(2026, 10, 23, 18, 30)]  # a Friday evening
    first, _ = checks_of(workspace.settings, database.engine, now)
    first.run()  # records when it was first watched, in the database
    now[0] = at(2026, 10, 26, 7, 29)  # Monday, after the clocks went back: 59 working minutes
    later, sent_later = checks_of(workspace.settings, database.engine, now, owner="host-b:2:2:2")
    later.run()  # another daemon (or a restart) counts from the same moment
    assert sent_later == []
    now[0] = at(2026, 10, 26, 7, 31)
    later.run()
    closed(first)
    closed(later)
    [alert] = sent_later
    assert (alert["last_file_at"], alert["counted_from"]) == (None, "2026-10-23T16:30:00+00:00")
    assert alert["text"].endswith("(none since watched from Fri 2026-10-23 18:30 CEST)")


def test_working_time_is_exact_across_both_dst_changes() -> None:
    from processor.alert_checks import working_seconds

    every_day, all_day = range(7), (0, 24 * 60)
    spring = working_seconds(at(2026, 3, 28, 12, 0), at(2026, 3, 29, 12, 0), all_day, every_day, AMSTERDAM)
    autumn = working_seconds(at(2026, 10, 24, 12, 0), at(2026, 10, 25, 12, 0), all_day, every_day, AMSTERDAM)
    night = working_seconds(at(2026, 3, 29, 0, 0), at(2026, 3, 30, 0, 0), (60, 300), every_day, AMSTERDAM)
    assert (spring / 3600, autumn / 3600, night / 3600) == (23.0, 25.0, 3.0)  # 01:00-05:00 that night: 3 h
    weekdays = range(5)
    weekend = working_seconds(at(2026, 3, 27, 19, 0), at(2026, 3, 30, 7, 0), (420, 1140), weekdays, AMSTERDAM)
    assert weekend == 0.0


def test_the_new_keys_are_checked_and_shown_by_config_check(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        AlertSettings(working_hours="19:00-07:00")
    with pytest.raises(ValueError, match="working_days"):
        AlertSettings(working_days=["monday"])  # type: ignore[list-item]
    config = tmp_path / "wardbulk.toml"
    config.write_text(
        '[alerts]\nwaiting_minutes = 45\nworking_hours = "08:00-17:30"\n'
        '[[senders]]\nname = "lab"\nfiles = ["LAB_*.csv"]\nsilent_hours = 4\n'
    )
    result = run_cli("--config", str(config), "config", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for shown in ("alerts.waiting_minutes = 45.0", 'alerts.working_hours = "08:00-17:30"', '"silent_hours": 4.0',
                  'alerts.working_days = ["mon", "tue", "wed", "thu", "fri"]', "alerts.processing_minutes = 120.0",
                  "alerts.check_every_s = 60", '"sender_silent", "notification_failed"]'):  # fmt: skip
        assert shown in result.stdout


def test_the_daemon_alerts_a_file_whose_done_marker_never_comes(
    tmp_path: Path, empty_database_url: str, webhook: tuple[str, type[Receiver]]
) -> None:
    url, receiver = webhook
    daemon = DaemonRun(
        tmp_path,
        empty_database_url,
        WARDBULK_ALERTS__CHANNELS=json.dumps([{"kind": "webhook", "url": url}]),
        WARDBULK_ALERTS__WAITING_MINUTES="0.02",  # 1.2 s
        WARDBULK_ALERTS__CHECK_EVERY_S="1",
        WARDBULK_OPERATIONS__IMPORT_PATIENTS__DONE_MARKER="true",
    )
    try:
        process = daemon.start()
        (daemon.inbox() / "no-marker.csv").write_text(BAD_HEADER)
        wait_for(lambda: any(b["rule"] == "file_waiting" for b in receiver.bodies), timeout=15, what="alert")
        time.sleep(2.5)  # two more checks: the same file is not alerted again
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        daemon.stop_all()
    [alert] = receiver.bodies
    assert (alert["file"], alert["folder"], alert["state"]) == ("no-marker.csv", "import_patients", "waiting")
    assert "Ann-Secret" not in json.dumps(alert)
    assert (daemon.inbox() / "no-marker.csv").exists()


def test_notification_failures_held_back_are_reported_with_their_totals_and_apart_from_a_server_down() -> (
    None
):
    settings = AlertSettings(channels=[WebhookChannel(kind="webhook", url="http://127.0.0.1:9/x")])
    alerter, sent = recording(settings, [0.0])
    alerter.start()
    alerter.notifications_failed({"refused": 3}, channel_down=False)
    alerter.notifications_failed({"expired": 50}, channel_down=False)  # held back: same window
    alerter.notifications_failed({"refused": 1}, channel_down=True)  # the server down: its own key
    alerter.close()  # reports what was held back
    counts = [
        (f.get("failed"), f.get("failed_refused"), f.get("failed_expired"), f.get("held_back"))
        for _, _, f in sent
    ]
    assert (3, 3, None, None) in counts
    assert (51, 1, 50, 2) in counts  # the totals of the two reports held back, not the last one's
    assert sum(1 for _, _, f in sent if f.get("channel_down")) == 1


def test_a_file_dropped_again_under_its_name_is_a_new_episode_and_a_link_loop_stops_nothing(
    tmp_path: Path, database: Database
) -> None:
    workspace = make_workspace(tmp_path, database, alerts=WATCHING)
    folder = workspace.inbox / "import_patients"
    (folder / "aa-loop.csv").symlink_to(folder / "aa-loop.csv")  # stat() would raise ELOOP
    stuck = workspace.drop("import_patients", "again.csv", BAD_HEADER, mtime=time.time() - 7200)
    now = [datetime.now(UTC) + timedelta(minutes=31)]
    checks, sent = checks_of(workspace.settings, database.engine, now)
    checks.run()
    aside = tmp_path / "aside.csv"
    stuck.rename(aside)  # taken away; the same name comes back later, on the same inode (as ext4's
    checks.run()  # reuse of a freed inode gives it)
    aside.rename(stuck)
    os.utime(stuck, (time.time() - 3600, time.time() - 3600))
    now[0] += timedelta(hours=1)
    checks.run()
    closed(checks)
    files = [alert["file"] for alert in sent]
    assert files.count("again.csv") == 2  # the loop stopped neither look
    assert files.count("aa-loop.csv") == 1  # it waits too (nothing can read it), alerted once


def test_a_database_that_cannot_take_the_episode_does_not_silence_the_alert(tmp_path: Path) -> None:
    from processor.bootstrap import App, initialise
    from processor.settings import Settings

    database_file = tmp_path / "wardbulk.sqlite3"
    settings = Settings(
        database_url=f"sqlite:///{database_file}",
        inbox_dir=tmp_path / "inbox",
        outbox_dir=tmp_path / "outbox",
        archive_dir=tmp_path / "archive",
        alerts=WATCHING,
    )
    app = App(settings=settings, engine=build_engine(settings.database_url))
    initialise(app, demo=False)
    (tmp_path / "inbox" / "import_patients" / "late.csv").write_text(BAD_HEADER)
    now = [datetime.now(UTC) + timedelta(minutes=31)]
    checks, sent = checks_of(settings, app.engine, now)
    with app.engine.begin() as connection:
        connection.execute(text("DROP TABLE scheduled_runs"))  # every claim now fails
    checks.run()
    closed(checks)
    app.close()
    assert [alert["file"] for alert in sent] == ["late.csv"]

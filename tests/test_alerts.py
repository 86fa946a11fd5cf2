"""Alerts (issue 15): a failed file, a file with too many failed rows, a daemon restarted after an unclean
stop, sent by e-mail (a real SMTP server: aiosmtpd, with STARTTLS and a login) and by webhook (a real HTTP
receiver on 127.0.0.1); throttled per rule, sender and type; a failing channel is retried and never holds
a file back; no alert carries a cell's value."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from processor.adapters.alert_channels import ChannelError, send
from processor.adapters.database.operation_records import Counts
from processor.alert_settings import AlertSettings, WebhookChannel
from processor.alerting import Alert, Alerter
from processor.core.operation_types import OperationStatus
from processor.pipeline import FileOutcome
from tests.conftest import Database, make_workspace
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


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode())
        return "250 OK"


def login(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
    return AuthResult(
        success=isinstance(data, LoginPassword) and (data.login, data.password) == (b"ward", b"s3cret")
    )


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as a hospital's own CA would issue for its relay."""
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def smtp_server(certificate: tuple[Path, Path]) -> Iterator[tuple[int, Mailbox]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=login,
    )
    controller.start()
    yield port, mailbox
    controller.stop()


def relay_channel(port: int, certificate: tuple[Path, Path], **extra: str) -> dict[str, Any]:
    """An [[alerts.channels]] table for the test's SMTP server, trusting its certificate."""
    return {
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "ca_file": str(certificate[0]),
        "sender": "wardbulk@hospital.example",
        "recipients": ["oncall@hospital.example"],
        **extra,
    }


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

    build_daemon(workspace.app)._scheduled_report(workspace.settings.schedules[0])
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

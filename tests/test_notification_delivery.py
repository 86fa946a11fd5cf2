"""Caregiver notifications e-mailed by wardbulk (issue 15, ``[notifications] email``), against a real SMTP
relay (aiosmtpd with STARTTLS and a login) and the real database:

- sent after the file's commit, to each caregiver with an address, each recorded sent or failed;
- never twice: what a dead daemon was sending is recorded ``interrupted``, not sent again, while what
  it had not yet sent is sent by the next daemon;
- a refused recipient fails that one notification; a temporary refusal is retried, then given up; a
  server that is down leaves them all pending and untried; news too old is failed ``expired``;
- two daemons sending at once never send one notification twice;
- no address and no name in a log line.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from processor.adapters.owners import owner_of_pid
from processor.alert_settings import AlertSettings, WebhookChannel
from processor.metrics import exposition
from processor.notifying import Courier, compose
from tests.conftest import Database, Workspace, make_workspace, run_cli
from tests.mail_server import PASSWORD, USERNAME, Mailbox, free_port, relay_channel
from tests.test_alerts import recording
from tests.test_metrics import samples, value

PATIENTS = (
    "first_name,last_name,email,patient_id,caregiver_name,caregiver_email\n"
    "Ann,Lee,ann@example.org,001,Carl Lee,carl@example.org\n"
    "Bob,Ray,bob@example.org,002,Dora Ray,\n"
    "Cy,Oak,cy@example.org,003,,\n"
    "Eve,Fox,eve@example.org,004,Finn Fox,finn@example.org\n"
)
ADMIT = "patient_id,bed_id,reason,notify\n001,CARD-01,Emergency,yes\n002,CARD-02,Routine,yes\n003,CARD-03,Routine,yes\n"


@pytest.fixture(autouse=True)
def smtp_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARDS_SMTP_PASSWORD", PASSWORD)


def mailing_workspace(
    tmp_path: Path, database: Database, port: int, certificate: tuple[Path, Path], **notifications: Any
) -> Workspace:
    channel = relay_channel(port, certificate, username=USERNAME, password_env="WARDS_SMTP_PASSWORD")
    return make_workspace(
        tmp_path,
        database,
        timezone="Europe/Amsterdam",
        alerts={"channels": [channel], "rules": []},
        notifications={"email": True, **notifications},
    )


def admitted(ws: Workspace, admit: str = ADMIT) -> None:
    ws.drop("import_patients", "patients.csv", PATIENTS)
    ws.run_once()
    ws.drop("bulk_assignment", "admit.csv", admit)


def now_pending(ws: Workspace) -> None:
    """What a file left to the messaging system (e-mail off) becomes wardbulk's to send, as if written
    so: the state a daemon finds after a crash, a server down or an earlier configuration."""
    with ws.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE patient_notifications SET status = 'email_pending' WHERE status = 'queued'")
        )


def statuses(ws: Workspace) -> dict[str, tuple[str, str | None, int, bool]]:
    """Caregiver name (or '-') → (status, failure, attempts, sent_at recorded)."""
    sql = (
        "SELECT coalesce(c.name, '-'), n.status, n.failure, n.attempts, n.sent_at IS NOT NULL"
        " FROM patient_notifications n LEFT JOIN caregivers c ON c.id = n.caregiver_id"
    )
    with ws.database.engine.connect() as connection:
        return {row[0]: tuple(row[1:]) for row in connection.execute(text(sql))}  # type: ignore[misc]


def courier(ws: Workspace, owner: str = "host-a:1:1:1", now: datetime | None = None) -> Courier:
    return Courier(ws.database.engine, ws.settings, owner, lambda: now or datetime.now(UTC))


def test_an_admission_is_mailed_to_each_caregiver_with_an_address_after_the_commit(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    port, mailbox = smtp_server
    ws = mailing_workspace(tmp_path, database, port, certificate)
    admitted(ws)
    ws.run_once()  # its end sends what the file committed

    [message] = mailbox.parsed()
    assert mailbox.recipients == [["carl@example.org"]]
    assert message["Subject"] == "Hospital notification: admission"  # names no one: servers log it
    body = message.get_content()
    assert body.startswith("Dear Carl Lee,")
    assert "Ann Lee was admitted to Cardiology, bed CARD-01 on " in body
    assert "(CET)" in body and "The ward team" in body
    assert statuses(ws) == {
        "Carl Lee": ("email_sent", None, 0, True),
        "Dora Ray": ("queued", None, 0, False),  # no address: the messaging system's, by the CSV
        "-": ("skipped", None, 0, False),
    }
    [csv_file] = (ws.outbox / "notifications").glob("admit.op*.notifications.csv")
    lines = csv_file.read_text(encoding="utf-8-sig").splitlines()
    assert lines[1].endswith(",email_pending")  # so the messaging system does not send it again
    assert lines[2].endswith(",queued")


def test_nothing_is_mailed_when_email_is_off(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    port, mailbox = smtp_server
    ws = mailing_workspace(tmp_path, database, port, certificate, email=False)
    admitted(ws)
    ws.run_once()
    assert mailbox.messages == []
    assert statuses(ws)["Carl Lee"][0] == "queued"


def test_a_server_that_is_down_leaves_them_pending_untried_and_the_next_round_sends_them(
    tmp_path: Path, database: Database, certificate: tuple[Path, Path], smtp_server: tuple[int, Mailbox]
) -> None:
    port, mailbox = smtp_server
    ws = mailing_workspace(tmp_path, database, free_port(), certificate)  # nobody listens there
    admitted(ws)
    ws.run_once()
    assert statuses(ws)["Carl Lee"] == ("email_pending", None, 0, False)

    found = samples(exposition(ws.database.engine, ws.settings).decode())
    assert value(found, "wardbulk_notification_emails_unsent") == 1  # what an operator alerts on
    assert value(found, "wardbulk_notification_email_oldest_unsent_timestamp_seconds") > 1.7e9

    up = mailing_workspace(tmp_path / "again", database, port, certificate)
    outcome = courier(up).deliver_now()
    assert (outcome.sent, outcome.channel_down) == (1, False)
    assert statuses(up)["Carl Lee"] == ("email_sent", None, 0, True)
    assert mailbox.recipients == [["carl@example.org"]]
    assert (
        value(
            samples(exposition(ws.database.engine, ws.settings).decode()),
            "wardbulk_notification_emails_unsent",
        )
        == 0
    )


def test_after_a_crash_the_unsent_are_sent_and_the_one_in_flight_never_again(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    """A daemon died with Carl's e-mail in hand (claimed, maybe sent) and Finn's not yet claimed."""
    port, mailbox = smtp_server
    ws = mailing_workspace(tmp_path, database, port, certificate, email=False)
    admitted(ws, ADMIT + "004,CARD-04,Routine,yes\n")
    ws.run_once()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    gone = owner_of_pid(int(dead.stdout))  # a real process of this host, exited
    now_pending(ws)
    with ws.database.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE patient_notifications SET status = 'email_sending', sender = :gone, claimed_at = :at"
                " WHERE caregiver_id = (SELECT id FROM caregivers WHERE name = 'Carl Lee')"
            ),
            {"gone": gone, "at": datetime.now(UTC)},
        )
        connection.execute(text("DELETE FROM patient_notifications WHERE caregiver_id IS NULL"))
        connection.execute(
            text(
                "UPDATE patient_notifications SET status = 'queued' WHERE caregiver_id = "
                "(SELECT id FROM caregivers WHERE name = 'Dora Ray')"
            )
        )

    mailing = mailing_workspace(tmp_path / "restarted", database, port, certificate)
    outcome = courier(mailing).deliver_now()
    assert (outcome.sent, outcome.interrupted) == (1, 1)
    assert mailbox.recipients == [["finn@example.org"]]
    assert statuses(ws)["Carl Lee"] == ("email_failed", "interrupted", 0, False)
    assert statuses(ws)["Finn Fox"] == ("email_sent", None, 0, True)
    assert courier(mailing).deliver_now().sent == 0  # and nothing is sent twice later


def test_a_refused_recipient_fails_only_that_notification(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    port, mailbox = smtp_server
    mailbox.refuse["carl@example.org"] = "550 5.1.1 no such mailbox"
    ws = mailing_workspace(tmp_path, database, port, certificate)
    admitted(ws, ADMIT + "004,CARD-04,Routine,yes\n")
    ws.run_once()
    assert statuses(ws)["Carl Lee"] == ("email_failed", "refused", 1, False)
    assert statuses(ws)["Finn Fox"] == ("email_sent", None, 0, True)
    assert mailbox.recipients == [["finn@example.org"]]


def test_a_temporary_refusal_is_tried_again_then_given_up(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    port, mailbox = smtp_server
    mailbox.refuse["carl@example.org"] = "451 4.3.0 try again later"
    ws = mailing_workspace(tmp_path, database, port, certificate, max_attempts=2)
    admitted(ws)
    ws.run_once()
    assert statuses(ws)["Carl Lee"] == ("email_pending", None, 1, False)
    assert courier(ws).deliver_now().failed == 0  # not again before its time (greylisting: minutes)
    later = datetime.now(UTC) + timedelta(minutes=6)
    assert courier(ws, now=later).deliver_now().failures == {"gave-up": 1}
    assert statuses(ws)["Carl Lee"] == ("email_failed", "gave-up", 2, False)
    assert mailbox.messages == []


def test_news_older_than_max_age_is_failed_not_sent_late(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    port, mailbox = smtp_server
    ws = mailing_workspace(tmp_path, database, port, certificate, email=False)
    admitted(ws)
    ws.run_once()
    now_pending(ws)
    mailing = mailing_workspace(tmp_path / "later", database, port, certificate, max_age_hours=24)
    outcome = courier(mailing, now=datetime.now(UTC) + timedelta(hours=25)).deliver_now()
    assert (outcome.sent, outcome.expired) == (0, 2)
    assert statuses(ws)["Carl Lee"] == ("email_failed", "expired", 0, False)
    assert mailbox.messages == []


PAIRS = 21  # the demo's free beds in two wards


def test_two_daemons_sending_at_once_never_send_one_notification_twice(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    port, mailbox = smtp_server
    ws = mailing_workspace(tmp_path, database, port, certificate, email=False)
    ws.drop("import_patients", "many.csv", _many_patients(PAIRS))
    ws.run_once()
    ws.drop("bulk_assignment", "many.csv", _many_admissions(PAIRS))
    ws.run_once()
    now_pending(ws)
    mailing = mailing_workspace(tmp_path / "two", database, port, certificate)
    couriers = [courier(mailing, owner=f"host-{name}:1:1:1") for name in "ab"]
    threads = [threading.Thread(target=c.deliver_now) for c in couriers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    sent = [address for recipients in mailbox.recipients for address in recipients]
    assert sorted(sent) == sorted(f"care{i}@example.org" for i in range(PAIRS))
    assert set(statuses(ws).values()) == {("email_sent", None, 0, True)}


def _many_patients(count: int) -> str:
    rows = (f"P{i},Q{i},p{i}@example.org,M{i:03d},Care {i},care{i}@example.org\n" for i in range(count))
    return "first_name,last_name,email,patient_id,caregiver_name,caregiver_email\n" + "".join(rows)


def _many_admissions(count: int) -> str:
    free_demo_beds = [f"CARD-{n:02d}" for n in range(1, 10)] + [f"SURG-{n:02d}" for n in range(1, 13)]
    rows = (f"M{i:03d},{bed},Routine,yes\n" for i, bed in zip(range(count), free_demo_beds, strict=True))
    return "patient_id,bed_id,reason,notify\n" + "".join(rows)


def test_the_message_gives_the_local_time_on_both_sides_of_a_dst_change() -> None:
    from processor.adapters.database.notifications import Letter
    from processor.settings import Settings

    settings = Settings(timezone="Europe/Amsterdam")

    def letter(kind: str, at: datetime) -> Letter:
        return Letter(1, 1, kind, "a@b.c", "Carl", "Ann", "Lee", "ICU", "Intensive Care", "ICU-01", at, 0)

    _, summer = compose(letter("transfer", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)), settings)
    _, winter = compose(letter("discharge", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)), settings)
    assert "Ann Lee was moved to Intensive Care, bed ICU-01 on 2026-10-25 at 02:30 (CEST)." in summer
    assert "Ann Lee was discharged from Intensive Care on 2026-10-25 at 02:30 (CET)." in winter


def test_email_without_an_smtp_channel_with_tls_is_refused_by_config_check(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "wardbulk.toml").write_text(
        '[notifications]\nemail = true\n\n[[alerts.channels]]\nkind = "smtp"\nhost = "localhost"\n'
        'tls = "none"\nsender = "w@h.example"\nrecipients = ["o@h.example"]\n'
    )
    result = run_cli("config", "check", cwd=tmp_path)
    assert result.returncode != 0
    assert "notifications.email" in result.stderr + result.stdout


def test_wardbulk_process_sends_before_exiting_and_logs_no_address_or_name(
    tmp_path: Path,
    empty_database_url: str,
    smtp_server: tuple[int, Mailbox],
    certificate: tuple[Path, Path],
) -> None:
    port, mailbox = smtp_server
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "wardbulk.toml").write_text(
        f'database_url = "{empty_database_url}"\n\n[notifications]\nemail = true\n\n'
        f'[[alerts.channels]]\nkind = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
        f'ca_file = "{certificate[0]}"\nusername = "{USERNAME}"\npassword_env = "WARDS_SMTP_PASSWORD"\n'
        'sender = "wardbulk@hospital.example"\nrecipients = ["oncall@hospital.example"]\n'
    )
    env = {"WARDS_SMTP_PASSWORD": PASSWORD, "WARDBULK_LOG_FORMAT": "json", "WARDBULK_LOG_LEVEL": "DEBUG"}
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    (tmp_path / "patients.csv").write_text(PATIENTS)
    (tmp_path / "admit.csv").write_text(ADMIT)
    imported = run_cli("process", "patients.csv", "--operation", "import_patients", cwd=tmp_path, env=env)
    assert imported.returncode == 0, imported.stderr
    result = run_cli("process", "admit.csv", "--operation", "bulk_assignment", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert mailbox.recipients == [["carl@example.org"]]
    assert '"notification_sent"' in result.stderr
    for secret in ("carl@example.org", "Carl", "Ann", "Lee", PASSWORD):
        assert secret not in result.stderr


def test_a_message_the_server_took_but_answered_too_late_for_is_never_sent_again(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    """The relay kept it and then stalled past the time-out: it may have gone, so it is not resent."""
    port, mailbox = smtp_server
    mailbox.reply_after_s = 3.0
    channel = relay_channel(
        port, certificate, username=USERNAME, password_env="WARDS_SMTP_PASSWORD", timeout_s=1.0
    )
    ws = make_workspace(
        tmp_path, database, alerts={"channels": [channel], "rules": []}, notifications={"email": True}
    )
    admitted(ws)
    ws.run_once()
    assert statuses(ws)["Carl Lee"] == ("email_failed", "interrupted", 1, False)
    mailbox.reply_after_s = 0.0
    assert courier(ws).deliver_now().sent == 0
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize("trouble", ["relay denied", "wrong password"], ids=["policy-5.7.1", "login-refused"])
def test_a_server_refusing_us_rather_than_the_recipient_leaves_every_one_pending_untried(
    tmp_path: Path,
    database: Database,
    smtp_server: tuple[int, Mailbox],
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    trouble: str,
) -> None:
    port, mailbox = smtp_server
    if trouble == "relay denied":
        mailbox.refuse["carl@example.org"] = "550 5.7.1 Relaying denied"
        mailbox.refuse["finn@example.org"] = "550 5.7.1 Relaying denied"
    else:
        monkeypatch.setenv("WARDS_SMTP_PASSWORD", "not-it")
    ws = mailing_workspace(tmp_path, database, port, certificate)
    admitted(ws, ADMIT + "004,CARD-04,Routine,yes\n")
    ws.run_once()
    assert statuses(ws)["Carl Lee"] == ("email_pending", None, 0, False)
    assert statuses(ws)["Finn Fox"] == ("email_pending", None, 0, False)
    assert mailbox.messages == []


def test_the_daemons_courier_sends_when_woken_and_stops_cleanly(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    """Started with nothing to send, its next look would be a minute away: a wake sends at once."""
    port, mailbox = smtp_server
    ws = mailing_workspace(tmp_path, database, port, certificate, email=False)
    admitted(ws)
    ws.run_once()
    running = courier(mailing_workspace(tmp_path / "daemon", database, port, certificate))
    running.start()
    try:
        time.sleep(0.5)  # its first round found nothing
        with ws.database.engine.begin() as connection:
            connection.execute(
                text("UPDATE patient_notifications SET status = 'email_pending' WHERE caregiver_id = "
                     "(SELECT id FROM caregivers WHERE name = 'Carl Lee')")
            )  # fmt: skip
        running.wake()  # as the daemon does after each file
        deadline = time.monotonic() + 10
        while statuses(ws)["Carl Lee"][0] != "email_sent":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        started = time.monotonic()
        running.close()
        assert time.monotonic() - started < 5
    assert mailbox.recipients == [["carl@example.org"]]


def test_email_switched_off_fails_what_is_still_pending_and_alerts(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    """The CSV told the messaging system these were wardbulk's to send: they must not wait unseen."""
    port, _mailbox = smtp_server
    ws = mailing_workspace(tmp_path, database, free_port(), certificate)  # the server is down
    admitted(ws)
    ws.run_once()
    assert statuses(ws)["Carl Lee"][0] == "email_pending"
    alerts: list[tuple[dict[str, int], bool]] = []
    off = mailing_workspace(tmp_path / "off", database, port, certificate, email=False)
    Courier(
        off.database.engine,
        off.settings,
        "host-a:1:1:1",
        lambda: datetime.now(UTC),
        alert=lambda f, d: alerts.append((f, d)),
    ).start()
    assert statuses(ws)["Carl Lee"] == ("email_failed", "disabled", 0, False)
    assert alerts == [({"disabled": 1}, False)]


def test_a_refused_notification_raises_the_notification_failed_alert_without_a_name(
    tmp_path: Path, database: Database, smtp_server: tuple[int, Mailbox], certificate: tuple[Path, Path]
) -> None:
    port, mailbox = smtp_server
    mailbox.refuse["carl@example.org"] = "550 5.1.1 no such mailbox"
    ws = mailing_workspace(tmp_path, database, port, certificate, email=False)
    admitted(ws)
    ws.run_once()
    now_pending(ws)
    mailing = mailing_workspace(tmp_path / "alerting", database, port, certificate)
    hook = WebhookChannel(kind="webhook", url="http://127.0.0.1:9/hook")
    alerter, sent = recording(AlertSettings(channels=[hook]), [0.0])
    alerter.start()
    on_failure = alerter.notifications_failed
    Courier(
        ws.database.engine, mailing.settings, "host-a:1:1:1", lambda: datetime.now(UTC), alert=on_failure
    ).deliver_now()
    alerter.close()
    [(_, subject, fields)] = sent
    assert subject.startswith("wardbulk: caregiver e-mails failed")  # Carl refused; Dora has no address
    assert (fields["rule"], fields["failed"]) == ("notification_failed", 2)
    assert (fields["failed_refused"], fields["failed_no-address"]) == (1, 1)
    assert "Carl" not in str(fields) and "carl@" not in str(fields)

"""Health (issue 15): `wardbulk health` exits 0/1/2 from the database, the daemons' heartbeats, the inbox's
backlog and the last failure; the daemon speaks systemd's notify protocol (READY=1, STATUS=, WATCHDOG=1,
STOPPING=1) on the socket systemd gives it, here a real datagram socket in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from processor.adapters.database.daemons import DaemonState, daemon_states
from processor.adapters.owners import owner_of_pid
from processor.adapters.systemd import SystemdNotifier
from processor.health import Level, _daemons
from processor.liveness import Liveness
from tests.conftest import Database, run_cli
from tests.test_daemon_e2e import DaemonRun, wait_for

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """The socket systemd would listen on for a Type=notify unit."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


class Listener:
    """Reads the socket all along (as systemd does: a full queue would drop messages) and keeps them."""

    def __init__(self, sock: socket.socket) -> None:
        self.messages: list[str] = []
        self._sock, self._done = sock, threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._done.is_set():
            try:
                self.messages += self._sock.recv(4096).decode().split("\n")
            except (TimeoutError, OSError):
                continue

    def close(self) -> None:
        self._done.set()
        self._thread.join()


def health(daemon: DaemonRun, *args: str) -> tuple[int, dict[str, dict[str, object]]]:
    result = run_cli("health", "--json", *args, cwd=daemon.root, env=daemon.env)
    assert result.returncode in (0, 1, 2), result.stderr
    report = json.loads(result.stdout)
    return result.returncode, {check["name"]: check for check in report["checks"]}


def test_the_daemon_tells_systemd_it_is_ready_alive_and_stopping(
    tmp_path: Path, empty_database_url: str, notify_socket: socket.socket
) -> None:
    sock_path = str(tmp_path / "notify.sock")
    daemon = DaemonRun(tmp_path, empty_database_url, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="900000")
    listener = Listener(notify_socket)
    try:
        process = daemon.start()
        wait_for(lambda: listener.messages.count("WATCHDOG=1") >= 2, what="two watchdog pings")
        assert "READY=1" in listener.messages
        assert any(m.startswith("STATUS=watching ") for m in listener.messages)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        wait_for(lambda: "STOPPING=1" in listener.messages, what="STOPPING=1")
        assert listener.messages.index("READY=1") < listener.messages.index("STOPPING=1")
    finally:
        listener.close()
        daemon.stop_all()


class Recorded(SystemdNotifier):
    """The notifier, keeping what it would send (systemd is behind this port)."""

    def __init__(self, watchdog_s: float) -> None:
        super().__init__({})
        self.watchdog_s = watchdog_s
        self.sent: list[str] = []

    def notify(self, *fields: str) -> None:
        self.sent += fields


def test_a_daemon_that_stops_moving_stops_pinging_and_beating_until_it_moves_again(
    database: Database,
) -> None:
    notifier = Recorded(watchdog_s=0.15)
    liveness = Liveness(
        database.engine,
        "elsewhere:1:1:1",
        lambda: datetime.now(UTC),
        lambda: (False, 0),
        notifier,
        heartbeat_s=0.05,
        stall_after_s=0.3,
    )
    liveness.start()
    try:
        time.sleep(0.3)
        assert notifier.sent.count("WATCHDOG=1") >= 2
        time.sleep(0.4)  # no progress for longer than stall_after_s: silent
        silent_from = len(notifier.sent)
        time.sleep(0.3)
        assert notifier.sent[silent_from:] == []
        liveness.moved()
        time.sleep(0.2)
        assert "WATCHDOG=1" in notifier.sent[silent_from:]
    finally:
        liveness.stop(clean=False)  # as after a crash: no clean stop recorded
    with database.engine.connect() as connection:
        [row] = daemon_states(connection)
    assert row.stopped_at is None


def test_without_notify_socket_nothing_is_sent_and_a_gone_socket_stops_nothing(tmp_path: Path) -> None:
    assert not SystemdNotifier({}).enabled
    SystemdNotifier({}).notify("READY=1")  # no socket: a no-op
    gone = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock"), "WATCHDOG_USEC": "3000000"})
    gone.notify("WATCHDOG=1")  # logged once, never raised
    assert gone.watchdog_s == 3.0
    assert (
        SystemdNotifier({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_s is None
    )


def test_health_follows_the_daemon_from_start_to_stop(tmp_path: Path, empty_database_url: str) -> None:
    daemon = DaemonRun(tmp_path, empty_database_url)
    try:
        code, checks = health(daemon)
        assert (code, checks["daemon"]["level"]) == (2, "CRITICAL")
        assert checks["daemon"]["message"] == "no daemon has run on this database"
        process = daemon.start()
        code, checks = health(daemon)
        assert code == 0, checks
        assert [checks[name]["level"] for name in ("database", "daemon", "inbox", "last_failure")] == [
            "OK"
        ] * 4
        assert "1 running on" in str(checks["daemon"]["message"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        code, checks = health(daemon)
        assert code == 2 and "stopped cleanly" in str(checks["daemon"]["message"])
        process = daemon.start()
        process.kill()  # no clean stop: the process table says it is gone, before any heartbeat ages
        process.wait()
        code, checks = health(daemon)
        assert code == 2 and "silent" in str(checks["daemon"]["message"])
    finally:
        daemon.stop_all()


def test_a_file_waiting_too_long_is_a_warning_and_the_last_failure_is_named(
    tmp_path: Path, empty_database_url: str
) -> None:
    daemon = DaemonRun(tmp_path, empty_database_url, WARDBULK_OPERATIONS__BULK_DISCHARGE__DONE_MARKER="true")
    try:
        daemon.start()
        (daemon.inbox() / "bad.csv").write_text("first_name\nAnn\n")  # fails: missing columns
        wait_for(lambda: "bad" in daemon.summaries(), what="the failed file's summary")
        waiting = daemon.inbox("bulk_discharge") / "late.csv"  # its .done marker never comes
        waiting.write_text("patient_id\nP-1\n")
        an_hour_ago = time.time() - 3600
        os.utime(waiting, (an_hour_ago, an_hour_ago))
        code, checks = health(daemon, "--max-wait", "30")
        assert code == 1, checks
        assert checks["inbox"]["level"] == "WARNING"
        assert (
            checks["inbox"]["message"]
            == "1 files waiting, the oldest for 60 min (bulk_discharge/late.csv), over 30 min"
        )
        failure = checks["last_failure"]
        assert failure["level"] == "OK" and failure["details"]["error_code"] == "missing-label"
        code, checks = health(daemon, "--max-wait", "90")
        assert code == 0 and checks["inbox"]["level"] == "OK"
    finally:
        daemon.stop_all()


def test_an_unmounted_inbox_is_critical_and_a_folder_the_daemon_leaves_alone_is_not_a_backlog(
    tmp_path: Path, empty_database_url: str
) -> None:
    daemon = DaemonRun(tmp_path, empty_database_url)
    kept = daemon.inbox() / "sent"  # a sender's own archive folder, not configured: never taken
    kept.mkdir()
    (kept / "old.csv").write_text("first_name\nAnn\n")
    os.utime(kept / "old.csv", (time.time() - 7200, time.time() - 7200))
    code, checks = health(daemon)
    assert checks["inbox"]["message"] == "no file waiting"
    daemon.env["WARDBULK_INBOX_DIR"] = str(tmp_path / "unmounted")
    code, checks = health(daemon)
    assert (code, checks["inbox"]["level"]) == (2, "CRITICAL")
    assert "is not there" in str(checks["inbox"]["message"])


def test_an_unreachable_database_is_critical_and_nothing_is_created(tmp_path: Path) -> None:
    env = {
        "WARDBULK_DATABASE_URL": "postgresql://wardbulk@127.0.0.1:9/none",
        "WARDBULK_INBOX_DIR": str(tmp_path / "in"),
    }
    result = run_cli("health", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert "CRITICAL database     unreachable" in result.stdout
    assert not (tmp_path / "in").exists()


def state(
    beat_age: timedelta, paused: bool = False, stopped: bool = False, owner: str = "elsewhere:1:1:1"
) -> DaemonState:
    beat = NOW - beat_age
    return DaemonState(
        owner, owner.split(":", maxsplit=1)[0], beat, beat, beat if stopped else None, paused, 3
    )


def test_a_paused_or_silent_daemon_is_a_warning_and_a_remote_one_is_judged_by_its_heartbeat() -> None:
    assert _daemons([state(timedelta(seconds=20))], NOW).level is Level.OK
    assert _daemons([state(timedelta(seconds=20), paused=True)], NOW).level is Level.WARNING
    assert _daemons([state(timedelta(minutes=6))], NOW).level is Level.CRITICAL  # another host's, stale
    assert _daemons([state(timedelta(seconds=5), stopped=True)], NOW).level is Level.CRITICAL
    with subprocess.Popen(["sleep", "60"]) as alive:  # a process of this host, as a local daemon is
        try:
            here = owner_of_pid(alive.pid)
            silent_here = _daemons([state(timedelta(minutes=7), owner=here)], NOW)  # no beat for 7 min
            assert (silent_here.level, "no heartbeat for 7 min" in silent_here.message) == (
                Level.WARNING,
                True,
            )
        finally:
            alive.kill()


DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def unit_settings(path: Path) -> dict[str, str]:
    settings = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return settings


def test_the_systemd_unit_runs_the_daemon_as_its_own_user_watched_and_confined() -> None:
    unit = unit_settings(DEPLOY / "wardbulk.service")
    assert (unit["Type"], unit["NotifyAccess"], unit["WatchdogSec"]) == ("notify", "main", "300")
    assert (unit["User"], unit["UMask"], unit["ProtectSystem"], unit["NoNewPrivileges"]) == (
        "wardbulk",
        "0027",
        "strict",
        "yes",
    )
    assert unit["ExecStart"].endswith("/bin/wardbulk run")
    assert unit["ReadWritePaths"] == "/var/lib/wardbulk"
    assert unit_settings(DEPLOY / "wardbulk-health.service")["ExecStart"].endswith("/bin/wardbulk health")


def test_systemd_finds_nothing_wrong_with_the_units_but_the_missing_install(tmp_path: Path) -> None:
    """systemd-analyze verify, where the machine has it; only the not-yet-installed program may be missing."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    units = [shutil.copy(DEPLOY / name, tmp_path) for name in ("wardbulk.service", "wardbulk-health.service")]
    verified = subprocess.run(
        [analyze, "verify", "--man=no", *units], capture_output=True, text=True, check=False
    )
    complaints = [line for line in verified.stderr.splitlines() if line and "is not executable" not in line]
    assert complaints == []

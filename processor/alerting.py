"""Alerts (issue 15): nobody watches a dashboard all night, so the daemon tells people.

Rules (``[alerts] rules``, all on by default):

- ``file_failed``: a file failed as a whole (not a dry run), also one finished by recovery;
- ``error_rate``: a completed file's failed rows are more than ``error_rate`` of its rows;
- ``unclean_start``: the daemon started after earlier ones on this host died without stopping;
- ``file_waiting`` and ``sender_silent``: looked for periodically, see ``processor.alert_checks``;
- ``notification_failed``: caregiver e-mails failed for good, or cannot be sent (``processor.notifying``).

An alert carries the rule, the operation, its id, the file's name, the sender, counts and the error
code: never a cell's value. Repeats are throttled: one alert per rule, sender and operation type per
``throttle_minutes``; when a window with repeats ends, one more alert says how many were held back
(``held_back``), also at shutdown, so that no failure goes unreported. Each channel has its own bounded
queue (``QUEUE_LIMIT``; beyond it the newest are dropped and counted) and its own sending thread, each
alert retried with growing waits (``RETRY_WAITS_S``): a failing channel never holds a file back, nor
another channel's alerts. An alert that still fails is logged (its rule and channel, not its content)
and dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from processor.adapters.alert_channels import ChannelError, send
from processor.alert_settings import AlertSettings
from processor.core.names import display_name
from processor.logs import get_logger
from processor.pipeline import Decided, FileOutcome

log = get_logger(__name__)
RETRY_WAITS_S = (1.0, 5.0, 30.0, 120.0)
QUEUE_LIMIT = 1000
TICK_S = 1.0  # how often throttle windows that ended with repeats are looked for


@dataclass(frozen=True)
class Alert:
    """One alert: its rule, what it is about (``key``: sender and operation type), and its fields."""

    rule: str
    key: tuple[str, str]
    subject: str
    fields: dict[str, Any] = field(default_factory=dict)
    # Counts that repeats held back add up (the report of a window gives their totals, not the last's).
    summed: tuple[str, ...] = ()


@dataclass
class _Window:
    opened: float
    held_back: int = 0
    last: Alert | None = None  # the latest alert held back, to report the count with


@dataclass
class _Lane:
    """One channel's queue and sending thread: a channel retrying for minutes delays only itself."""

    channel: Any
    queue: queue.Queue[Alert] = field(default_factory=lambda: queue.Queue(QUEUE_LIMIT))
    dropped: int = 0
    thread: threading.Thread | None = None


class Alerter:
    """Raises alerts by the rules, throttles them, and sends them on a thread per channel."""

    def __init__(
        self,
        settings: AlertSettings,
        sender: Callable[[Any, str, dict[str, Any]], None] = send,
        clock: Callable[[], float] = time.monotonic,
        retry_waits_s: Sequence[float] = RETRY_WAITS_S,
    ) -> None:
        self._settings, self._send, self._clock, self._waits = settings, sender, clock, retry_waits_s
        self._windows: dict[tuple[str, str, str], _Window] = {}
        self._lock = threading.Lock()
        self._lanes = [_Lane(channel) for channel in settings.channels]
        self._ticker: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def enabled(self) -> bool:
        return bool(self._settings.channels)

    def wants(self, rule: str) -> bool:
        return self.enabled and rule in self._settings.rules

    def start(self) -> None:
        """A sending thread per channel, and one that reports the repeats of windows that ended."""
        if not self.enabled:
            return
        for number, lane in enumerate(self._lanes):
            name = f"alerts-{number}-{lane.channel.kind}"
            lane.thread = threading.Thread(target=self._deliver, args=(lane,), name=name, daemon=True)
            lane.thread.start()
        self._ticker = threading.Thread(target=self._tick, name="alerts-windows", daemon=True)
        self._ticker.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Report the repeats still held back, send what is queued (retries cut short) for at most
        ``timeout_s`` in all, and log what could not be sent."""
        if self._ticker is None:
            return
        self._flush_windows(every=True)
        self._closing.set()
        deadline = time.monotonic() + timeout_s
        for thread in (self._ticker, *(lane.thread for lane in self._lanes)):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        for index, lane in enumerate(self._lanes):
            with self._lock:
                unsent = lane.queue.qsize() + lane.dropped
            if unsent:
                log.warning("alerts_not_sent_at_stop", channel=lane.channel.kind, index=index, alerts=unsent)

    def files_published(self, batch: Sequence[Decided], outcomes: Sequence[FileOutcome]) -> None:
        """The rules about files just published (their fields: no cell value, the name made safe)."""
        try:
            for decided, outcome in zip(batch, outcomes, strict=True):
                job = decided.job
                fields = _fields(
                    outcome, job.claimed.operation_type.value, job.claimed.original_name, job.sender
                )
                self.file_finished(fields, outcome, job.dry_run)
        except Exception as exc:  # an alert's trouble must never be taken for the files'
            log.warning("alerts_failed", error=type(exc).__name__)

    def files_recovered(self, outcomes: Sequence[FileOutcome]) -> None:
        """The rules about files recovery finished (a crash's files: its summary names them)."""
        for outcome in outcomes:
            if outcome.summary is None:
                continue
            name = outcome.summary.name.split(".op", 1)[0]
            fields = _fields(outcome, outcome.summary.parent.name, name, None)
            self.file_finished(fields, outcome, dry_run=False)

    def file_finished(self, fields: dict[str, Any], outcome: FileOutcome, dry_run: bool) -> None:
        """The rules about one finished file (``fields``: operation, operation_id, file, sender, code)."""
        if dry_run:
            return
        failed, total = outcome.counts.failed, outcome.counts.total
        key = (str(fields.get("sender") or "-"), str(fields["operation"]))
        what = f"{fields['operation']} file {fields['file']}"
        if outcome.status.value == "failed" and self.wants("file_failed"):
            subject = f"wardbulk: {what} failed ({fields.get('error_code')})"
            self.raise_alert(Alert("file_failed", key, subject, fields))
        too_many = bool(total) and failed / total > self._settings.error_rate
        if outcome.status.value == "completed" and too_many and self.wants("error_rate"):
            subject = f"wardbulk: {failed} of {total} rows of {what} failed"
            self.raise_alert(Alert("error_rate", key, subject, fields))

    def unclean_start(self, hosts: list[str], last_heartbeat: str) -> None:
        """One alert for the daemons of this host that died without stopping."""
        subject = f"wardbulk: the daemon on {hosts[0]} restarted after an unclean stop"
        fields = {"host": hosts[0], "daemons": len(hosts), "last_heartbeat": last_heartbeat}
        if self.wants("unclean_start"):
            self.raise_alert(Alert("unclean_start", ("-", "-"), subject, fields))

    def notifications_failed(self, failures: dict[str, int], channel_down: bool) -> None:
        """Caregiver e-mails failed for good (``failures``: count by reason), or the mail server is
        down with e-mails waiting: people must know that a caregiver was not told."""
        if not self.wants("notification_failed") or not (failures or channel_down):
            return
        if failures:
            counts = {"failed": sum(failures.values())} | {f"failed_{why}": n for why, n in failures.items()}
            subject = "wardbulk: caregiver e-mails failed (counts by reason in the alert)"
            alert = Alert("notification_failed", ("-", "notifications"), subject, counts, tuple(counts))
            self.raise_alert(alert)
        if channel_down:  # a key of its own: the two never throttle each other away
            subject = "wardbulk: caregiver e-mails cannot be sent (the mail server fails)"
            fields = {"channel_down": True}
            self.raise_alert(Alert("notification_failed", ("-", "notifications-down"), subject, fields))

    def raise_alert(self, alert: Alert) -> None:
        """Queue ``alert`` unless its rule and key had one within the throttle window (then count it)."""
        if not self.enabled:
            return
        with self._lock:
            slot = (alert.rule, *alert.key)
            window = self._windows.get(slot)
            if window is not None and self._clock() - window.opened < self._settings.throttle_minutes * 60:
                window.held_back += 1
                window.last = _summed(window.last, alert)
                return
            self._windows[slot] = _Window(self._clock())
        self._put(Alert(alert.rule, alert.key, alert.subject, {"rule": alert.rule, **alert.fields}))

    def _put(self, alert: Alert) -> None:
        """Queue ``alert`` on every channel; a full queue drops it for that channel only (counted)."""
        with self._lock:
            for lane in self._lanes:
                try:
                    lane.queue.put_nowait(alert)
                except queue.Full:
                    lane.dropped += 1

    def _flush_windows(self, every: bool = False) -> None:
        """Report the repeats of windows that ended (``every``: of all windows, at shutdown)."""
        now, span = self._clock(), self._settings.throttle_minutes * 60
        with self._lock:
            ended = [(slot, w) for slot, w in self._windows.items() if every or now - w.opened >= span]
            for slot, _ in ended:
                del self._windows[slot]
        for _, window in ended:
            if window.held_back and window.last is not None:
                last = window.last
                fields = {"rule": last.rule, **last.fields, "held_back": window.held_back}
                subject = f"{last.subject} (and {window.held_back} more like it since the last alert)"
                self._put(Alert(last.rule, last.key, subject, fields))

    def _tick(self) -> None:
        while not self._closing.wait(TICK_S):
            self._flush_windows()

    def _deliver(self, lane: _Lane) -> None:
        """Send the lane's alerts one by one until closing with its queue empty."""
        while True:
            try:
                alert = lane.queue.get(timeout=TICK_S)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            self._send_with_retries(lane.channel, alert)

    def _send_with_retries(self, channel: Any, alert: Alert) -> None:
        for attempt, wait_s in enumerate((*self._waits, None), start=1):
            try:
                self._send(channel, alert.subject, alert.fields)
                return
            except Exception as exc:  # a channel's failure is never the daemon's
                if wait_s is None or self._closing.is_set():
                    log.warning(
                        "alert_not_sent",
                        rule=alert.rule,
                        channel=channel.kind,
                        attempts=attempt,
                        error=type(exc).__name__,
                        reason=str(exc) if isinstance(exc, ChannelError) else None,  # no secret, no value
                    )
                    return
                self._closing.wait(wait_s)


def _summed(earlier: Alert | None, later: Alert) -> Alert:
    """``later`` with its ``summed`` counts added to those of the repeat held back before it."""
    if earlier is None or not later.summed:
        return later
    totals = {
        key: earlier.fields.get(key, 0) + later.fields.get(key, 0) for key in {*earlier.summed, *later.summed}
    }
    return Alert(later.rule, later.key, later.subject, later.fields | totals, tuple(totals))


def _fields(outcome: FileOutcome, operation: str, file_name: str, sender: str | None) -> dict[str, Any]:
    return {
        "operation": operation,
        "operation_id": outcome.operation_id,
        "file": display_name(file_name),
        "sender": sender,
        "status": outcome.status.value,
        "error_code": outcome.error_code,
        "total_records": outcome.counts.total,
        "failed_records": outcome.counts.failed,
    }

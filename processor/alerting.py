"""Alerts (issue 15): nobody watches a dashboard all night, so the daemon tells people.

Rules (``[alerts] rules``, all on by default):

- ``file_failed``: a file failed as a whole (not a dry run);
- ``error_rate``: a completed file's failed rows are more than ``error_rate`` of its rows;
- ``unclean_start``: the daemon started after an earlier one on this host died without stopping.

An alert carries the rule, the operation, its id, the file's name, the sender, counts and the error
code: never a cell's value. Repeats are throttled: one alert per rule, sender and operation type per
``throttle_minutes``; the next one after a window says how many were held back. Alerts are sent by a
thread of their own, each channel retried with growing waits (``RETRY_WAITS_S``), so a failing channel
never holds a file back; an alert that still fails is logged (without its content) and dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from processor.adapters.alert_channels import send
from processor.alert_settings import AlertSettings
from processor.core.names import display_name
from processor.logs import get_logger
from processor.pipeline import Decided, FileOutcome

log = get_logger(__name__)
RETRY_WAITS_S = (1.0, 5.0, 30.0, 120.0)


@dataclass(frozen=True)
class Alert:
    """One alert: its rule, what it is about (``key``: sender and operation type), and its fields."""

    rule: str
    key: tuple[str, str]
    subject: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Window:
    opened: float
    held_back: int = 0


class Alerter:
    """Raises alerts by the rules, throttles them, and sends them on its own thread."""

    def __init__(
        self,
        settings: AlertSettings,
        sender: Callable[[Any, str, dict[str, Any]], None] = send,
        clock: Callable[[], float] = time.monotonic,
        retry_waits_s: Sequence[float] = RETRY_WAITS_S,
    ) -> None:
        self._settings, self._send, self._clock, self._waits = settings, sender, clock, retry_waits_s
        self._windows: dict[tuple[str, str, str], _Window] = {}
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def enabled(self) -> bool:
        return bool(self._settings.channels)

    def start(self) -> None:
        if self.enabled:
            self._thread = threading.Thread(target=self._deliver, name="alerts", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (retries are cut short), for at most ``timeout_s``."""
        if self._thread is None:
            return
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout_s)

    def files_published(self, batch: Sequence[Decided], outcomes: Sequence[FileOutcome]) -> None:
        """The rules about files just published (their fields: no cell value, the name made safe)."""
        for decided, outcome in zip(batch, outcomes, strict=True):
            job, counts = decided.job, outcome.counts
            fields = {
                "operation": job.claimed.operation_type.value,
                "operation_id": outcome.operation_id,
                "file": display_name(job.claimed.original_name),
                "sender": job.sender,
                "status": outcome.status.value,
                "error_code": outcome.error_code,
                "total_records": counts.total,
                "failed_records": counts.failed,
            }
            self.file_finished(fields, outcome.status.value, counts.failed, counts.total, job.dry_run)

    def file_finished(
        self, fields: dict[str, Any], status: str, failed: int, total: int, dry_run: bool
    ) -> None:
        """The rules about one published file (``fields``: operation, operation_id, file, sender, code)."""
        if dry_run:
            return
        key = (str(fields.get("sender") or "-"), str(fields["operation"]))
        if status == "failed" and "file_failed" in self._settings.rules:
            subject = (
                f"wardbulk: {fields['operation']} file {fields['file']} failed ({fields.get('error_code')})"
            )
            self.raise_alert(Alert("file_failed", key, subject, fields))
        elif status == "completed" and total and failed / total > self._settings.error_rate:
            what = f"{fields['operation']} file {fields['file']}"
            subject = f"wardbulk: {failed} of {total} rows of {what} failed"
            if "error_rate" in self._settings.rules:
                self.raise_alert(Alert("error_rate", key, subject, fields))

    def unclean_start(self, fields: dict[str, Any]) -> None:
        if "unclean_start" in self._settings.rules:
            subject = f"wardbulk: the daemon on {fields['host']} restarted after an unclean stop"
            self.raise_alert(Alert("unclean_start", ("-", "-"), subject, fields))

    def raise_alert(self, alert: Alert) -> None:
        """Queue ``alert`` unless its rule and key had one within the throttle window (then count it)."""
        if not self.enabled:
            return
        now, window_s = self._clock(), self._settings.throttle_minutes * 60
        slot = (alert.rule, *alert.key)
        window = self._windows.get(slot)
        if window is not None and now - window.opened < window_s:
            window.held_back += 1
            return
        fields = {"rule": alert.rule, **alert.fields}
        if window is not None and window.held_back:
            fields["held_back"] = window.held_back  # alerts of this rule held back in the last window
        self._windows[slot] = _Window(now)
        self._queue.put(Alert(alert.rule, alert.key, alert.subject, fields))

    def _deliver(self) -> None:
        while (alert := self._queue.get()) is not None:
            for channel in self._settings.channels:
                self._send_with_retries(channel, alert)

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
                    )
                    return
                self._closing.wait(wait_s)

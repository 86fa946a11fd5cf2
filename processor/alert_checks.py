"""The alert rules looked for periodically (issue 15): every ``[alerts] check_every_s`` (60) each daemon's
scheduler runs ``AlertChecks.run``.

- ``file_waiting``: a file in the backlog ``wardbulk health`` sees (``health.waiting_entries``) waiting
  longer than ``waiting_minutes``: stuck behind a file that never becomes ready, never finished being
  written (never stable, or its ``.done`` marker never came), or not claimable. It has waited since the
  earlier of two moments: its inode's last change (``ctime``: the drop, the rename in, the last write; a
  copy that keeps an old modification time is not taken for an old file) and when this daemon first saw
  it (a file written to for ever changes its ``ctime`` at each write, yet waits). Also a file in progress
  (its operation ``pending`` or ``processing``) for longer than ``processing_minutes``: a daemon hung on
  it, or a file far larger than usual.
- ``sender_silent``: no file from a sender with ``silent_hours`` for that many *working* hours
  (``working_hours`` on ``working_days``, in the wards' ``timezone``), counted from the newest operation
  recorded for it (any status, dry runs too; newest by id, which the (sender, id) index finds at once). A
  sender with no file yet counts from when a daemon first watched it: recorded once in the database, so
  that a restart does not start the count again.

Raised once per episode. An episode is one file waiting (its path and inode), one operation in progress,
one silence (a sender and the file it is counted from). Its first alert claims it in the database, as a
scheduled report claims its period (``claim_run``, schedule ``alert:<rule>``, key: a digest of the
episode): of several daemons sharing a database one alerts, once, and a restart does not alert again.
A file that goes on waiting is not alerted again (``wardbulk health`` and the metrics keep showing it); a
new file, a new operation, a sender's next silence are new episodes. Every daemon looks (a scan of the
inbox and an indexed query per sender: less than the daemon's own rescan), rather than one elected per
window, because the episode's claim already makes one of them the one that alerts; the throttle
(``throttle_minutes``) still applies to what is raised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError

from processor.adapters.database.models import BulkOperation, ScheduledRun
from processor.alerting import Alert, Alerter
from processor.core.clock import Clock
from processor.core.names import display_name
from processor.core.operation_kinds import OperationType
from processor.core.operation_types import OperationStatus
from processor.health import Waiting, waiting_entries
from processor.logs import get_logger
from processor.reports.schedules import claim_run
from processor.sender_settings import SenderSettings
from processor.settings import Settings

log = get_logger(__name__)
EPISODE_PREFIX = "alert:"  # the schedule names its claims go under (a report's name would not start so)
WATCHED = "sender_watched"  # the claim that records when a sender with no file yet was first watched
EPISODE_RULES = ("file_waiting", "sender_silent")
NEW_EPISODES_PER_CHECK = 50  # claimed per check at most: a backlog of thousands costs a minute's 50 rows
IN_PROGRESS_LIMIT = 100  # operations in progress looked at per check (more would be one incident anyway)
FORGET_EPISODES_AFTER = timedelta(days=30)  # episode claims older than this are deleted (once a day)


@dataclass
class AlertChecks:
    """The periodic rules of one daemon; ``run`` is its scheduled job."""

    settings: Settings
    engine: Engine
    alerter: Alerter
    clock: Clock
    owner: str  # the daemon's owner name, recorded with each episode it claims
    # (path, inode) → when first seen, and its modification time then (the episode's mark)
    _first_seen: dict[tuple[Path, int], tuple[datetime, int]] = field(default_factory=dict)
    _claimed: set[tuple[str, str]] = field(default_factory=set)  # episodes known taken, still current
    _current: set[tuple[str, str]] = field(default_factory=set)  # episodes met in this run
    _new_this_run: int = 0
    _watched_since: dict[str, datetime] = field(default_factory=dict)
    _forgotten_on: date | None = None

    @property
    def wanted(self) -> bool:
        """Whether there is anything to look for: a rule on (with a channel), a sender to watch."""
        watched = any(sender.silent_hours for sender in self.settings.senders)
        return self.alerter.wants("file_waiting") or (self.alerter.wants("sender_silent") and watched)

    def run(self) -> None:
        """One look at every rule that is on; a rule that fails is logged, the others go on, and the
        next look tries again."""
        now = self.clock()
        self._current, self._new_this_run = set(), 0
        checks = (
            ("file_waiting", self.files_waiting),
            ("file_waiting", self.files_in_progress),
            ("sender_silent", self.senders_silent),
        )
        for rule, check in checks:
            if not self.alerter.wants(rule):
                continue
            try:
                check(now)
            except Exception as exc:  # the database down, the inbox gone: health says so, not this
                log.warning("alert_check_failed", rule=rule, check=check.__name__, error=type(exc).__name__)
                self._current |= self._claimed  # nothing is forgotten for a look that did not finish
        self._claimed &= self._current  # episodes over are forgotten here (their claims stay)
        self._forget_old_episodes(now)

    def files_waiting(self, now: datetime) -> None:
        """Alert each file that has waited longer than ``waiting_minutes`` (once per file)."""
        limit = timedelta(minutes=self.settings.alerts.waiting_minutes)
        seen: dict[tuple[Path, int], tuple[datetime, int]] = {}
        overdue: list[tuple[Waiting, timedelta, str]] = []
        for waiting in waiting_entries(self.settings):
            key = (waiting.file.path, waiting.status.st_ino)
            seen[key] = self._first_seen.get(key, (now, waiting.status.st_mtime_ns))
            first_seen, mark = seen[key]
            since = min(first_seen, datetime.fromtimestamp(waiting.status.st_ctime, UTC))
            if now - since > limit:  # the path from the inbox: hosts may mount the share elsewhere
                relative = waiting.file.path.relative_to(self.settings.inbox_dir).as_posix()
                # The modification time when first seen tells a file dropped again under the same
                # name, on a reused inode, from the one before it: a new arrival, a new episode.
                overdue.append((waiting, now - since, f"{relative}\0{waiting.status.st_ino}\0{mark}"))
        self._first_seen = seen  # files gone are forgotten, before the database is asked anything
        for waiting, waited, episode in overdue:
            self._raise_once(self._waiting_alert(waiting, waited), episode, now)

    def files_in_progress(self, now: datetime) -> None:
        """Alert each operation in progress for longer than ``processing_minutes`` (once per operation)."""
        cutoff = now - timedelta(minutes=self.settings.alerts.processing_minutes)
        in_progress = (OperationStatus.PENDING.value, OperationStatus.PROCESSING.value)
        query = (
            select(
                BulkOperation.id,
                BulkOperation.operation_type,
                BulkOperation.input_file,
                BulkOperation.sender,
                BulkOperation.created_at,
            )
            .where(BulkOperation.status.in_(in_progress), BulkOperation.created_at < cutoff)
            .order_by(BulkOperation.id)
            .limit(IN_PROGRESS_LIMIT)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        for row in rows:
            self._raise_once(self._in_progress_alert(row, now), f"operation {row.id}", now)

    def senders_silent(self, now: datetime) -> None:
        """Alert each watched sender silent for ``silent_hours`` of working time (once per silence)."""
        alerts = self.settings.alerts
        hours, days, zone = alerts.working_minutes(), alerts.working_weekdays(), self.settings.zone()
        for sender in self.settings.senders:
            if sender.silent_hours is None:
                continue
            last = self._last_file_at(sender.name)
            since = last or self._first_watched(sender.name, now)
            enough = sender.silent_hours * 3600
            if working_seconds(since, now, hours, days, zone, enough) >= enough:
                alert = self._silent_alert(sender, since, last is not None, zone)
                self._raise_once(alert, f"{sender.name}\0{since.isoformat()}", now)

    def _raise_once(self, alert: Alert, episode: str, now: datetime) -> None:
        """Raise ``alert`` if this episode of its rule is not claimed yet (here or by another daemon).

        At most ``NEW_EPISODES_PER_CHECK`` claims per run: the rest come at the next. When the database
        cannot take the claim, the alert is raised all the same (throttled): an outage is when files
        pile up, and a second daemon's duplicate is the lesser harm."""
        digest = hashlib.sha256(episode.encode("utf-8", "surrogateescape")).hexdigest()[:40]
        self._current.add((alert.rule, digest))
        if (alert.rule, digest) in self._claimed or self._new_this_run >= NEW_EPISODES_PER_CHECK:
            return
        self._new_this_run += 1
        try:
            ours = claim_run(self.engine, EPISODE_PREFIX + alert.rule, digest, self.owner, now)
        except SQLAlchemyError as exc:
            log.warning("alert_episode_unclaimed", rule=alert.rule, error=type(exc).__name__)
            self.alerter.raise_alert(alert)
            return
        if ours:
            self.alerter.raise_alert(alert)
        self._claimed.add((alert.rule, digest))

    def _forget_old_episodes(self, now: datetime) -> None:
        """Once a day, delete episode claims older than ``FORGET_EPISODES_AFTER`` (not the record of
        when a sender was first watched): the table does not grow with every incident for ever."""
        if self._forgotten_on == now.date():
            return
        self._forgotten_on = now.date()
        old = (
            delete(ScheduledRun)
            .where(ScheduledRun.schedule_name.in_([EPISODE_PREFIX + rule for rule in EPISODE_RULES]))
            .where(ScheduledRun.claimed_at < now - FORGET_EPISODES_AFTER)
        )
        try:
            with self.engine.begin() as connection:
                connection.execute(old)
        except SQLAlchemyError as exc:
            log.warning("alert_episodes_not_forgotten", error=type(exc).__name__)

    def _waiting_alert(self, waiting: Waiting, waited: timedelta) -> Alert:
        inbox_file = waiting.file
        operation, name = inbox_file.operation_type.value, display_name(inbox_file.path.name)
        sender = inbox_file.sender or self._sender_of(inbox_file.operation_type, inbox_file.path.name)
        folder = inbox_file.path.parent.relative_to(self.settings.inbox_dir).as_posix()
        minutes = int(waited.total_seconds() // 60)
        fields: dict[str, Any] = {
            "state": "waiting",
            "operation": operation,
            "file": name,
            "folder": display_name(folder),
            "sender": sender,
            "dry_run": inbox_file.dry_run,
            "waiting_minutes": minutes,
        }
        subject = f"wardbulk: {operation} file {name} has waited {minutes} min in the inbox"
        return Alert("file_waiting", (sender or "-", operation), subject, fields)

    def _in_progress_alert(self, row: Any, now: datetime) -> Alert:
        name = display_name(Path(row.input_file).name) if row.input_file else "?"
        minutes = int((now - row.created_at).total_seconds() // 60)
        fields: dict[str, Any] = {
            "state": "in_progress",
            "operation": row.operation_type,
            "operation_id": row.id,
            "file": name,
            "sender": row.sender,
            "in_progress_minutes": minutes,
        }
        what = f"{row.operation_type} file {name} (operation {row.id})"
        subject = f"wardbulk: {what} has been in progress for {minutes} min"
        # A key of its own: the files stuck behind it must not throttle the root cause away.
        key = (row.sender or "-", f"{row.operation_type}:in_progress")
        return Alert("file_waiting", key, subject, fields)

    def _silent_alert(self, sender: SenderSettings, since: datetime, had_file: bool, zone: ZoneInfo) -> Alert:
        local = since.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")
        fields: dict[str, Any] = {
            "sender": sender.name,
            "silent_hours": sender.silent_hours,
            "last_file_at": since.isoformat(timespec="seconds") if had_file else None,
            "counted_from": since.isoformat(timespec="seconds"),
            "working_hours": self.settings.alerts.working_hours,
            "timezone": self.settings.timezone,
        }
        after = f"the last at {local}" if had_file else f"none since watched from {local}"
        subject = f"wardbulk: no file from {sender.name} for {sender.silent_hours:g} working hours ({after})"
        return Alert("sender_silent", (sender.name, "-"), subject, fields)

    def _sender_of(self, operation_type: OperationType, file_name: str) -> str | None:
        senders = self.settings.sender_of(operation_type, file_name)
        return senders[0].name if len(senders) == 1 else None  # an ambiguous file names none

    def _last_file_at(self, sender: str) -> datetime | None:
        query = (
            select(BulkOperation.created_at)
            .where(BulkOperation.sender == sender)
            .order_by(BulkOperation.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def _first_watched(self, sender: str, now: datetime) -> datetime:
        """When a daemon first watched this sender (recorded by the first to ask; kept here after)."""
        if sender not in self._watched_since:
            name = EPISODE_PREFIX + WATCHED
            claim_run(self.engine, name, sender, self.owner, now)  # False: recorded before, kept
            query = select(ScheduledRun.claimed_at).where(
                ScheduledRun.schedule_name == name, ScheduledRun.period_key == sender
            )
            with self.engine.connect() as connection:
                self._watched_since[sender] = connection.execute(query).scalar_one()
        return self._watched_since[sender]


def working_seconds(
    since: datetime,
    until: datetime,
    hours: tuple[int, int],
    days: Collection[int],
    zone: ZoneInfo,
    enough: float | None = None,
) -> float:
    """Seconds of working time between two instants: the parts of ``[since, until]`` that fall in the
    working ``hours`` (minutes since midnight, start and end) of the working ``days`` (Monday = 0), read
    on the wall clock of ``zone``. Exact across DST changes: each day's span is turned into instants
    before anything is subtracted (aware datetimes of one zone subtract wall times, not elapsed time).
    A wall time that a change skips is read with the offset before it. With ``enough``, stops counting
    once there is that much (a long silence need not be walked day by day)."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    total = 0.0
    day = since.astimezone(zone).date()
    while day <= until.astimezone(zone).date() and (enough is None or total < enough):
        if day.weekday() in days:
            start, end = (_instant(day, minutes, zone) for minutes in hours)
            total += max(0.0, (min(end, until) - max(start, since)).total_seconds())
        day += timedelta(days=1)
    return total


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which ``zone``'s wall clock shows ``minutes`` past the start of ``day``
    (1440: the next day's midnight)."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)  # naive: wall-clock arithmetic
    return wall.replace(tzinfo=zone).astimezone(UTC)

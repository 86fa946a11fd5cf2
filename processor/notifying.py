"""The courier: caregiver notifications e-mailed after their file's commit (issue 15, ``[notifications]``).

A file's transaction records each notification to e-mail as ``email_pending``; nothing is sent inside
it, so a rollback never leaves a caregiver told of an admission that did not happen. The daemon's courier
thread is woken after each file and also looks every ``POLL_S``; ``run --once`` and ``wardbulk process``
make one round before they exit. A round:

1. fails (``expired``) what waited longer than ``max_age_hours``: late news does more harm than good;
2. fails (``interrupted``) what a gone daemon was sending: it may have left, and is never sent twice;
3. claims a few at a time, renews each claim just before sending it (a claim lost to another daemon
   that judged us gone is not sent), and sends it through the patient mailer (SMTP with TLS).

Whose trouble a failed send is decides what follows (``ChannelError.fault``):

- the recipient refused for good: that notification fails (``refused``); ``REFUSALS_BEFORE_PAUSE`` in a
  row without a success pause the round, since the server is then the likelier cause;
- refused for now (SMTP 4xx, greylisting): given back with one more try counted, not tried again
  before ``RETRY_AFTER`` (doubling), failed ``gave-up`` after ``max_attempts``; the round pauses;
- the server cannot be reached, refuses the login, our sender or by policy (5.7.x): every claimed one
  goes back untried and the courier waits (``BACKOFF_S``, growing) before the next round;
- the connection failed once the message itself had started to go: it may have been delivered, so it
  is failed ``interrupted``, never sent again. So is one whose send raised anything unforeseen.

With e-mail switched off, what is still pending is failed ``disabled`` (the CSV told the messaging
system these were wardbulk's to send). Failures for good, and a server down for several rounds, raise
the ``notification_failed`` alert. Logs carry notification and operation ids, statuses and reasons,
never an address or a name.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from processor.adapters.alert_channels import ChannelError, mail_text
from processor.adapters.database import notifications as store
from processor.adapters.database.notifications import Letter
from processor.alert_settings import ADDRESS, SmtpChannel
from processor.logs import get_logger
from processor.settings import Settings

log = get_logger(__name__)
BATCH = 20
POLL_S = 60.0
BACKOFF_S = (5.0, 30.0, 120.0, 300.0)
RETRY_AFTER = timedelta(minutes=5)  # after a temporary refusal (greylisting: 5-30 min), doubling
REFUSALS_BEFORE_PAUSE = 5  # refused for good in a row, no success between: pause, the server may be wrong
ADDRESS_RE = re.compile(ADDRESS)
KIND_WORDS = {"admission": "admitted to", "transfer": "moved to", "discharge": "discharged from"}


@dataclass
class Round:
    """What one round did; ``channel_down`` when it stopped because the server failed (or refused for
    now): the courier then waits before the next round."""

    sent: int = 0
    retried: int = 0
    expired: int = 0
    interrupted: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # failed for good, by reason
    channel_down: bool = False
    refused_in_a_row: int = 0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


Mailer = Callable[[SmtpChannel, list[str], str, str], None]
Alert = Callable[[dict[str, int], bool], None]  # failures by reason, whether the server is down


def _no_alert(_failures: dict[str, int], _down: bool) -> None:
    return None


@dataclass
class Courier:
    """Sends pending caregiver e-mails, in rounds, on its own thread or when asked."""

    engine: Engine
    settings: Settings
    owner: str
    clock: Callable[[], datetime]
    mailer: Mailer = mail_text
    alert: Alert = _no_alert
    _wake: threading.Event = field(default_factory=threading.Event)
    _closing: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _failures_in_a_row: int = 0
    # Sent, or maybe sent, but the database did not take the news: written at the next round, and
    # never given back to pending meanwhile (id → the values to write).
    _unrecorded: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.settings.notifications.email and self.settings.patient_mailer() is not None

    def start(self) -> None:
        """Run rounds on a thread of its own until ``close`` (with e-mail off: settle and return)."""
        if not self.enabled:
            self.deliver_now()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="courier", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """A file committed: look for new notifications now (unless waiting out a server's failure)."""
        self._wake.set()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop after the message in hand. One still in hand after ``timeout_s`` (a server that hangs)
        stays claimed, and the next daemon records it ``interrupted``: it may have gone."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("courier_still_sending_at_stop")
            self._thread = None

    def _run(self) -> None:
        while not self._closing.is_set():
            self._wake.clear()  # before the round: a file committed during it wakes the next at once
            outcome = self._safe_round()
            pause_s = self._pause_after(outcome)
            if outcome.channel_down:
                self._closing.wait(pause_s)  # a backoff: files committing meanwhile do not cut it short
            else:
                self._wake.wait(pause_s)

    def _pause_after(self, outcome: Round) -> float:
        if not outcome.channel_down:
            self._failures_in_a_row = 0
            return POLL_S
        self._failures_in_a_row += 1
        return BACKOFF_S[min(self._failures_in_a_row, len(BACKOFF_S)) - 1]

    def deliver_now(self) -> Round:
        """One round on the caller's thread (``run --once``, ``wardbulk process``): never raises (the
        file is committed whatever the mail server or the database does); what is not sent waits."""
        return self._safe_round()

    def _safe_round(self) -> Round:
        try:
            outcome = self.deliver_round()
        except Exception as exc:  # the database is away, or worse: the notifications wait there
            log.warning("notifications_round_failed", error=type(exc).__name__)
            return Round(channel_down=True)
        if outcome.failures or (outcome.channel_down and self._failures_in_a_row >= len(BACKOFF_S) - 1):
            self.alert(outcome.failures, outcome.channel_down)
        return outcome

    def deliver_round(self) -> Round:
        """One round (see the module). One round at a time per owner: a started courier's thread runs
        them, or the caller does (``deliver_now``), never both."""
        outcome = Round()
        if not self.enabled:
            self._settle_disabled(outcome)
            return outcome
        self._record_unrecorded()
        store.release(self.engine, self.owner, keep=set(self._unrecorded))  # a failed round's
        self._settle_stale(outcome)
        last_id = 0  # each notification once per round: one given back to retry waits for the next
        try:
            while not self._closing.is_set() and not outcome.channel_down:
                letters = store.claim(self.engine, self.owner, self.clock(), BATCH, after_id=last_id)
                if not letters:
                    break
                last_id = letters[-1].notification_id
                for letter in letters:
                    if self._closing.is_set() or outcome.channel_down:
                        break
                    self._deliver(letter, outcome)
        finally:
            self._release_untried()
        return outcome

    def _settle_disabled(self, outcome: Round) -> None:
        """E-mail was switched off with some still pending: nobody else will send them."""
        disabled = store.fail_pending(self.engine, "disabled")
        if disabled:
            log.warning("notifications_not_sent", disabled=disabled)
            outcome.failures["disabled"] = disabled

    def _settle_stale(self, outcome: Round) -> None:
        now = self.clock()
        outcome.expired = store.expire_pending(self.engine, now - self._max_age())
        outcome.interrupted = store.settle_interrupted(self.engine, now)
        for reason, count in (("expired", outcome.expired), ("interrupted", outcome.interrupted)):
            if count:
                outcome.failures[reason] = count
        if outcome.expired or outcome.interrupted:
            log.warning("notifications_not_sent", expired=outcome.expired, interrupted=outcome.interrupted)

    def _release_untried(self) -> None:
        """Give back what this round claimed and did not get to (next round again, if this fails)."""
        try:
            store.release(self.engine, self.owner, keep=set(self._unrecorded))
        except SQLAlchemyError as exc:
            log.warning("notifications_not_released", error=type(exc).__name__)

    def _record_unrecorded(self) -> None:
        for notification_id, values in list(self._unrecorded.items()):
            if values["status"] == store.SENT:
                ours = store.mark_sent(self.engine, self.owner, notification_id, values["sent_at"])
            else:
                ours = store.mark_failed(
                    self.engine, self.owner, notification_id, values["failure"], values["attempts"]
                )
            if not ours:  # another daemon judged us gone and recorded it "interrupted" meanwhile
                log.warning("notification_record_conflict", notification_id=notification_id)
            del self._unrecorded[notification_id]

    def _max_age(self) -> timedelta:
        return timedelta(hours=self.settings.notifications.max_age_hours)

    def _deliver(self, letter: Letter, outcome: Round) -> None:
        if not letter.address or not ADDRESS_RE.match(letter.address):
            self._fail(
                letter, "no-address" if not letter.address else "bad-address", letter.attempts, outcome
            )
            return
        if not store.still_ours(self.engine, self.owner, letter.notification_id, self.clock()):
            return  # another daemon judged us gone and settled it: never sent twice
        channel = self.settings.patient_mailer()
        assert channel is not None  # self.enabled
        subject, text = compose(letter, self.settings)
        try:
            self.mailer(channel, [letter.address], subject, text)
        except ChannelError as exc:
            self._refused(letter, exc, outcome)
        except (OSError, ValueError) as exc:  # unreachable, TLS, time-out: any message would fail
            self._channel_down(letter, type(exc).__name__, outcome)
        except Exception as exc:  # nobody can say whether it left: never sent again
            self._fail(letter, "interrupted", letter.attempts, outcome, error=type(exc).__name__)
        else:
            self._record(letter, {"status": store.SENT, "sent_at": self.clock()})
            log.info("notification_sent", **_ids(letter), kind=letter.kind)
            outcome.sent += 1
            outcome.refused_in_a_row = 0

    def _refused(self, letter: Letter, exc: ChannelError, outcome: Round) -> None:
        attempts = letter.attempts + 1
        if exc.fault == "channel":
            self._channel_down(letter, str(exc), outcome)
        elif exc.fault == "unknown":  # it may have been delivered
            self._fail(letter, "interrupted", attempts, outcome, error=str(exc))
        elif exc.fault == "message":
            self._fail(letter, "refused", attempts, outcome)
            outcome.refused_in_a_row += 1
            if outcome.refused_in_a_row >= REFUSALS_BEFORE_PAUSE:  # the server's doing, more likely
                outcome.channel_down = True
        elif attempts >= self.settings.notifications.max_attempts:
            self._fail(letter, "gave-up", attempts, outcome)
        else:
            wait = RETRY_AFTER * 2 ** (attempts - 1)
            store.retry_later(self.engine, self.owner, letter.notification_id, attempts, self.clock() + wait)
            log.info("notification_retry_later", **_ids(letter), attempts=attempts)
            outcome.retried += 1
            outcome.channel_down = True  # a server asking for patience: the others wait too

    def _channel_down(self, letter: Letter, error: str, outcome: Round) -> None:
        log.warning("notification_channel_down", **_ids(letter), error=error)
        outcome.channel_down = True

    def _fail(
        self, letter: Letter, failure: str, attempts: int, outcome: Round, error: str | None = None
    ) -> None:
        self._record(letter, {"status": store.FAILED, "failure": failure, "attempts": attempts})
        log.warning("notification_failed", **_ids(letter), failure=failure, error=error)
        outcome.failures[failure] = outcome.failures.get(failure, 0) + 1

    def _record(self, letter: Letter, values: dict[str, Any]) -> None:
        """Write a settled outcome; kept (and never released) until the database takes it."""
        self._unrecorded[letter.notification_id] = values
        self._record_unrecorded()


def _ids(letter: Letter) -> dict[str, Any]:
    return {"notification_id": letter.notification_id, "operation_id": letter.operation_id}


def compose(letter: Letter, settings: Settings) -> tuple[str, str]:
    """The subject and text of one caregiver e-mail. The subject names no one (mail servers log it)."""
    patient = f"{letter.patient_first_name} {letter.patient_last_name}".strip() or "The patient"
    ward = letter.ward_name or letter.ward_code or "the hospital"
    where = ward if letter.kind == "discharge" or not letter.bed_code else f"{ward}, bed {letter.bed_code}"
    when = ""
    if letter.event_at is not None:
        local = letter.event_at.astimezone(settings.zone())
        when = f" on {local:%Y-%m-%d} at {local:%H:%M} ({local.tzname()})"
    text = (
        f"Dear {letter.caregiver_name},\n\n"
        f"{patient} was {KIND_WORDS.get(letter.kind, letter.kind)} {where}{when}.\n\n"
        "This message was sent automatically; please do not reply to it.\n\n"
        f"{settings.notifications.signature}\n"
    )
    return f"Hospital notification: {letter.kind}", text

"""The courier: caregiver notifications e-mailed after their file's commit (issue 15, ``[notifications]``).

A file's transaction records each notification to e-mail as ``email_pending``; nothing is sent inside
it, so a rollback never leaves a caregiver told of an admission that did not happen. The daemon's courier
thread is woken after each file and also looks every ``POLL_S``; ``run --once`` and ``wardbulk process``
make one round before they exit. A round:

1. fails (``expired``) what waited longer than ``max_age_hours``: late news does more harm than good;
2. fails (``interrupted``) what a gone daemon was sending: it may have left, and is never sent twice;
3. claims a few at a time and sends each through the patient mailer (the first SMTP channel with TLS).

Whose trouble a failed send is decides what follows (``ChannelError.fault``): the recipient or the
content refused for good fails that one notification; a temporary refusal (SMTP 4xx) gives it back with
one more try counted, failed after ``max_attempts``; a server that cannot be reached or refuses the login
gives every claimed one back untried and the courier waits (``BACKOFF_S``, growing) before the next round.
Logs carry notification and operation ids, statuses and reasons, never an address or a name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from processor.adapters.alert_channels import ChannelError, mail_text
from processor.adapters.database import notifications as store
from processor.adapters.database.notifications import Letter
from processor.alert_settings import SmtpChannel
from processor.logs import get_logger
from processor.settings import Settings

log = get_logger(__name__)
BATCH = 20
POLL_S = 60.0
BACKOFF_S = (5.0, 30.0, 120.0, 300.0)
KIND_WORDS = {"admission": "admitted to", "transfer": "moved to", "discharge": "discharged from"}


@dataclass
class Round:
    """What one round did, by outcome; ``channel_down`` when it stopped because the server failed."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    interrupted: int = 0
    channel_down: bool = False


Mailer = Callable[[SmtpChannel, list[str], str, str], None]


@dataclass
class Courier:
    """Sends pending caregiver e-mails, in rounds, on its own thread or when asked."""

    engine: Engine
    settings: Settings
    owner: str
    clock: Callable[[], datetime]
    mailer: Mailer = mail_text
    _wake: threading.Event = field(default_factory=threading.Event)
    _closing: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _failures_in_a_row: int = 0
    # Sent, but the database did not take the news: recorded at the next round, never released.
    _sent_unrecorded: dict[int, datetime] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.settings.notifications.email and self.settings.patient_mailer() is not None

    def start(self) -> None:
        """Run rounds on a thread of its own until ``close``; a no-op when e-mail is off."""
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="courier", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """A file committed: look for new notifications now (unless waiting out a server's failure)."""
        self._wake.set()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop after the message in hand; what is still claimed goes back to pending."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._closing.is_set():
            outcome = self._safe_round()
            pause_s = self._pause_after(outcome)
            if outcome.channel_down:
                self._closing.wait(pause_s)  # a backoff: files committing meanwhile do not cut it short
            else:
                self._wake.wait(pause_s)
            self._wake.clear()

    def _pause_after(self, outcome: Round) -> float:
        if not outcome.channel_down:
            self._failures_in_a_row = 0
            return POLL_S
        self._failures_in_a_row += 1
        return BACKOFF_S[min(self._failures_in_a_row, len(BACKOFF_S)) - 1]

    def deliver_now(self) -> Round:
        """One round on the caller's thread (``run --once``, ``wardbulk process``): never raises for
        the database's or the server's trouble; what is not sent waits for the daemon."""
        return self._safe_round()

    def _safe_round(self) -> Round:
        try:
            return self.deliver_round()
        except SQLAlchemyError as exc:  # the database is away: the notifications wait there for us
            log.warning("notifications_round_failed", error=type(exc).__name__)
            return Round(channel_down=True)

    def deliver_round(self) -> Round:
        """One round (see the module). One round at a time per owner: a started courier's thread runs
        them, or the caller does (``deliver_now``), never both."""
        outcome = Round()
        if not self.enabled:
            return outcome
        self._record_what_was_sent()
        store.release(self.engine, self.owner, keep=set(self._sent_unrecorded))  # a failed round's
        now = self.clock()
        outcome.expired = store.expire_pending(self.engine, now - self._max_age())
        outcome.interrupted = store.settle_interrupted(self.engine, now)
        if outcome.expired or outcome.interrupted:
            log.warning("notifications_not_sent", expired=outcome.expired, interrupted=outcome.interrupted)
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

    def _release_untried(self) -> None:
        """Give back what this round claimed and did not get to (next round again, if this fails)."""
        try:
            store.release(self.engine, self.owner, keep=set(self._sent_unrecorded))
        except SQLAlchemyError as exc:
            log.warning("notifications_not_released", error=type(exc).__name__)

    def _record_what_was_sent(self) -> None:
        for notification_id, sent_at in list(self._sent_unrecorded.items()):
            store.mark_sent(self.engine, self.owner, notification_id, sent_at)
            del self._sent_unrecorded[notification_id]

    def _max_age(self) -> timedelta:
        return timedelta(hours=self.settings.notifications.max_age_hours)

    def _deliver(self, letter: Letter, outcome: Round) -> None:
        channel = self.settings.patient_mailer()
        assert channel is not None  # self.enabled
        subject, text = compose(letter, self.settings)
        ids = {"notification_id": letter.notification_id, "operation_id": letter.operation_id}
        try:
            self.mailer(channel, [letter.address], subject, text)
        except ValueError:  # the address cannot be written in a header (a line break, say)
            self._fail(letter, "bad-address", letter.attempts, outcome)
        except ChannelError as exc:
            self._refused(letter, exc, outcome)
        except OSError as exc:  # unreachable, TLS refused, timed out: any message would fail alike
            log.warning("notification_channel_down", **ids, error=type(exc).__name__)
            outcome.channel_down = True
        except Exception:  # nobody can say whether it left: never sent again
            log.exception("notification_send_crashed", **ids)
            self._fail(letter, "interrupted", letter.attempts, outcome)
        else:
            self._sent_unrecorded[letter.notification_id] = self.clock()
            log.info("notification_sent", **ids, kind=letter.kind)
            outcome.sent += 1
            self._record_what_was_sent()

    def _refused(self, letter: Letter, exc: ChannelError, outcome: Round) -> None:
        ids = {"notification_id": letter.notification_id, "operation_id": letter.operation_id}
        if exc.fault == "channel":
            log.warning("notification_channel_down", **ids, error=str(exc))
            outcome.channel_down = True
        elif exc.fault == "message":
            self._fail(letter, "refused", letter.attempts + 1, outcome)
        elif letter.attempts + 1 >= self.settings.notifications.max_attempts:
            self._fail(letter, "gave-up", letter.attempts + 1, outcome)
        else:
            store.retry_later(self.engine, self.owner, letter.notification_id, letter.attempts + 1)
            log.info("notification_retry_later", **ids, attempts=letter.attempts + 1)
            outcome.retried += 1

    def _fail(self, letter: Letter, failure: str, attempts: int, outcome: Round) -> None:
        store.mark_failed(self.engine, self.owner, letter.notification_id, failure, attempts)
        log.warning(
            "notification_failed",
            notification_id=letter.notification_id,
            operation_id=letter.operation_id,
            failure=failure,
        )
        outcome.failed += 1


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

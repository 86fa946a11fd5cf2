"""The e-mail bookkeeping of caregiver notifications (``patient_notifications``), for the courier.

A notification to be e-mailed is written ``email_pending`` in its file's transaction. The courier
claims a few at a time (``email_sending``, with its owner name and the time), sends them, and records
each as ``email_sent`` or ``email_failed``. Every change of status is a compare-and-set on the status
(and, once claimed, the owner), so two daemons never claim one notification and a late answer never
overwrites what recovery decided.

Never twice: a notification found ``email_sending`` under an owner that is gone (``owners``) may or may
not have left, so it is not sent again but recorded failed, ``interrupted``, for a person to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, or_, select, update

from processor.adapters.database.bulk import is_among
from processor.adapters.database.engine import BEGIN_IMMEDIATE
from processor.adapters.database.models import Caregiver, Patient, PatientNotification, User, Ward
from processor.adapters.owners import is_abandoned, this_process

PENDING, SENDING, SENT, FAILED = "email_pending", "email_sending", "email_sent", "email_failed"
CLAIM_TRIES = 5


@dataclass(frozen=True)
class Letter:
    """What one e-mail says, read when it is claimed (the patient's name as it is then)."""

    notification_id: int
    operation_id: int | None
    kind: str
    address: str
    caregiver_name: str
    patient_first_name: str
    patient_last_name: str
    ward_code: str | None
    ward_name: str | None
    bed_code: str | None
    event_at: datetime | None
    attempts: int


def expire_pending(engine: Engine, created_before: datetime) -> int:
    """Fail (``expired``) the pending notifications written before ``created_before``; how many."""
    statement = (
        update(PatientNotification)
        .where(PatientNotification.status == PENDING, PatientNotification.created_at < created_before)
        .values(status=FAILED, failure="expired")
    )
    with _writing(engine) as connection:
        return connection.execute(statement).rowcount


def settle_interrupted(engine: Engine, now: datetime) -> int:
    """Fail (``interrupted``) what gone owners were sending: it may have left, so it is never resent."""
    me = this_process()
    with _writing(engine) as connection:
        owners = connection.execute(
            select(PatientNotification.sender, func.max(PatientNotification.claimed_at))
            .where(PatientNotification.status == SENDING)
            .group_by(PatientNotification.sender)
        ).all()
        gone = [owner for owner, claimed_at in owners if owner != me and is_abandoned(owner, claimed_at, now)]
        if not gone:
            return 0
        statement = (
            update(PatientNotification)
            .where(
                PatientNotification.status == SENDING, is_among(connection, PatientNotification.sender, gone)
            )
            .values(status=FAILED, failure="interrupted", sender=None, claimed_at=None)
        )
        return connection.execute(statement).rowcount


def claim(engine: Engine, owner: str, now: datetime, limit: int, after_id: int = 0) -> list[Letter]:
    """Claim up to ``limit`` pending notifications with ids above ``after_id``, oldest first, and read
    what their e-mails say. Empty only when there are none left to claim."""
    for _ in range(CLAIM_TRIES):
        with _writing(engine) as connection:
            oldest = (
                select(PatientNotification.id)
                .where(PatientNotification.status == PENDING, PatientNotification.id > after_id)
                .where(or_(PatientNotification.next_try_at.is_(None), PatientNotification.next_try_at <= now))
                .order_by(PatientNotification.id)
                .limit(limit)
            )
            ids = list(connection.scalars(oldest))
            if not ids:
                return []
            mine = is_among(connection, PatientNotification.id, ids)
            claimed = list(
                connection.scalars(
                    update(PatientNotification)
                    .where(mine, PatientNotification.status == PENDING)
                    .values(status=SENDING, sender=owner, claimed_at=now)
                    .returning(PatientNotification.id)
                )
            )
            if claimed:  # else another daemon took these between our read and our write: look again
                letters = _letters().where(is_among(connection, PatientNotification.id, claimed))
                found = (Letter(*row) for row in connection.execute(letters))
                return sorted(found, key=lambda letter: letter.notification_id)
    return []


def _letters() -> Select[*tuple[Any, ...]]:
    """Letter's columns, in its order."""
    n = PatientNotification
    return (
        select(
            n.id,
            n.bulk_operation_id,
            n.kind,
            Caregiver.email,
            Caregiver.name,
            User.first_name,
            User.last_name,
            n.ward_code,
            Ward.name,
            n.bed_code,
            n.event_at,
            n.attempts,
        )
        .join(Caregiver, Caregiver.id == n.caregiver_id)
        .join(Patient, Patient.id == n.patient_id)
        .join(User, User.id == Patient.user_id)
        .outerjoin(Ward, Ward.code == n.ward_code)
    )


def mark_sent(engine: Engine, owner: str, notification_id: int, now: datetime) -> bool:
    """Record one claimed notification as sent; False if it is no longer ours to record."""
    return _settle(engine, owner, notification_id, status=SENT, sent_at=now)


def mark_failed(engine: Engine, owner: str, notification_id: int, failure: str, attempts: int) -> bool:
    """Record one claimed notification as failed for good (``failure``: a short code, no value)."""
    return _settle(engine, owner, notification_id, status=FAILED, failure=failure, attempts=attempts)


def retry_later(engine: Engine, owner: str, notification_id: int, attempts: int, at: datetime) -> bool:
    """Give one claimed notification back to pending, with the tries it has had so far, not to be
    tried again before ``at``."""
    return _settle(engine, owner, notification_id, status=PENDING, attempts=attempts, next_try_at=at)


def still_ours(engine: Engine, owner: str, notification_id: int, now: datetime) -> bool:
    """Renew the claim on one notification just before sending it; False when it is no longer ours
    (another daemon judged us gone): then it must not be sent."""
    return _update_claimed(engine, owner, notification_id, claimed_at=now)


def fail_pending(engine: Engine, failure: str) -> int:
    """Fail every pending notification (``failure``: why); how many. For e-mail switched off: the CSV
    told the messaging system these were wardbulk's to send, so they must not wait unseen."""
    statement = (
        update(PatientNotification)
        .where(PatientNotification.status == PENDING)
        .values(status=FAILED, failure=failure)
    )
    with _writing(engine) as connection:
        return connection.execute(statement).rowcount


def release(engine: Engine, owner: str, keep: set[int]) -> int:
    """Give back, unsent and untried, every notification ``owner`` still has claimed but those in
    ``keep`` (sent already: only their status is still to be written)."""
    statement = (
        update(PatientNotification)
        .where(PatientNotification.status == SENDING, PatientNotification.sender == owner)
        .values(status=PENDING, sender=None, claimed_at=None)
    )
    if keep:
        statement = statement.where(PatientNotification.id.not_in(keep))
    with _writing(engine) as connection:
        return connection.execute(statement).rowcount


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction that takes SQLite's write lock at its start: a read then a write in one
    transaction would otherwise fail, not wait, when another daemon writes meanwhile."""
    with engine.connect().execution_options(**{BEGIN_IMMEDIATE: True}) as connection, connection.begin():
        yield connection


def _settle(engine: Engine, owner: str, notification_id: int, **values: object) -> bool:
    """Write a claimed notification's outcome, the claim ended; False if it is no longer ours."""
    return _update_claimed(engine, owner, notification_id, sender=None, claimed_at=None, **values)


def _update_claimed(engine: Engine, owner: str, notification_id: int, **values: object) -> bool:
    """Set ``values`` on one notification only while ``owner`` holds its claim (a compare-and-set)."""
    statement = (
        update(PatientNotification)
        .where(
            PatientNotification.id == notification_id,
            PatientNotification.status == SENDING,
            PatientNotification.sender == owner,
        )
        .values(**values)
    )
    with _writing(engine) as connection:
        return connection.execute(statement).rowcount == 1

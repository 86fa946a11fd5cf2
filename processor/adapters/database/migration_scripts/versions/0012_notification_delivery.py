"""Caregiver notifications delivered by e-mail (issue 15): ``patient_notifications`` learns what it
notifies about (ward, bed, time) and how its e-mail went (status, attempts, sent time, reason of a
failure, which daemon is sending it, and when a temporary refusal may be tried again), with an index on
the statuses the courier looks for.

New statuses: ``email_pending`` (to be e-mailed), ``email_sending`` (claimed by a daemon),
``email_sent`` and ``email_failed``. On SQLite the CHECK constraint changes by rebuilding the table
(batch mode). The downgrade refuses while any notification has an e-mail status: the older schema
cannot say whether it went, and wardbulk deletes no history to make it fit.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES_BEFORE = ("queued", "skipped")
STATUSES = (*STATUSES_BEFORE, "email_pending", "email_sending", "email_sent", "email_failed")
CHECK = "ck_patient_notifications_status_known"
INDEX = "ix_patient_notifications_status_id"
NEW_COLUMNS = (
    "ward_code",
    "bed_code",
    "event_at",
    "attempts",
    "sent_at",
    "failure",
    "sender",
    "claimed_at",
    "next_try_at",
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    with op.batch_alter_table("patient_notifications", recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), _one_of("status", STATUSES))
        batch_op.add_column(sa.Column("ward_code", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("bed_code", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("event_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failure", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("sender", sa.String(255), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(INDEX, "patient_notifications", ["status", "id"])


def _refuse_while_emails_recorded() -> None:
    count = sa.text("SELECT count(*) FROM patient_notifications WHERE status LIKE 'email%'")
    if op.get_bind().execute(count).scalar_one():
        raise RuntimeError(
            "cannot downgrade below 0012 while notifications have e-mail statuses: the older schema "
            "cannot say whether they were sent"
        )


def downgrade() -> None:
    _refuse_while_emails_recorded()
    op.drop_index(INDEX, table_name="patient_notifications")
    with op.batch_alter_table("patient_notifications", recreate="auto") as batch_op:
        for column in reversed(NEW_COLUMNS):
            batch_op.drop_column(column)
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), _one_of("status", STATUSES_BEFORE))

"""SQLAlchemy 2 typed models of the ward database.

Naming: a foreign key ``patient_id`` always references ``patients.id`` (a database key). The hospital's own
identifiers, which CSV files call ``patient_id``, ``bed_id`` and ``ward``, are stored as ``patients.mrn``,
``ward_beds.code`` and ``wards.code``: opaque strings, matched exactly, leading zeros kept.

Patient safety is enforced here, by the database itself, not only by code:

- unique e-mail (stored lower-case, checked) and unique MRN;
- at most one active admission per patient and per bed (partial unique indexes);
- a bed's status is one of available/occupied/maintenance, and it has a current patient exactly when occupied;
- foreign keys everywhere (SQLite enforces them because the engine turns ``foreign_keys`` on).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

# Base is re-exported: whoever takes it from here has every table of the ward database registered on it.
from processor.adapters.database.base import Base as Base  # noqa: PLC0414 (an explicit re-export, for mypy)
from processor.adapters.database.base import UtcDateTime, enum_values, one_of
from processor.adapters.database.durations import OperationDuration

# Imported here so that every user of the models (migrations, tests) knows the tallies' tables too.
from processor.adapters.database.tallies import OperationDurationTally as OperationDurationTally  # noqa: PLC0414
from processor.adapters.database.tallies import OperationTally as OperationTally  # noqa: PLC0414
from processor.core.operation_kinds import CARE_EVENTS, OPERATION_NAMES
from processor.core.operation_types import BedStatus, OperationStatus

GENDERS = ("M", "F", "O", "U")
DISCHARGE_STATUSES = ("recovered", "transferred", "against_medical_advice", "deceased", "other")
NOTIFICATION_KINDS = CARE_EVENTS  # the descriptors' caregiver notification kinds
# queued: left to the messaging system (the CSV); skipped: no caregiver; email_*: e-mailed by wardbulk
# (processor/notifying.py): pending, then sending (claimed), then sent or failed (``failure`` says why).
NOTIFICATION_STATUSES = ("queued", "skipped", "email_pending", "email_sending", "email_sent", "email_failed")


class User(Base):
    """A person known to wardbulk: a patient's account, or the OS user who dropped a file."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Patient(Base):
    """A patient; ``mrn`` is the hospital's patient identifier (``patient_id`` in CSV files)."""

    __tablename__ = "patients"
    __table_args__ = (CheckConstraint(f"gender IS NULL OR {one_of('gender', GENDERS)}", name="gender_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    mrn: Mapped[str] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(1))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    bulk_operation_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_operations.id"))


class Caregiver(Base):
    """Someone to notify about a patient's admission and discharge."""

    __tablename__ = "caregivers"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Ward(Base):
    """A hospital ward; ``code`` is the hospital's identifier (``ward`` in CSV files)."""

    __tablename__ = "wards"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WardBed(Base):
    """A bed; ``code`` is the hospital's bed identifier (``bed_id`` in CSV files)."""

    __tablename__ = "ward_beds"
    __table_args__ = (
        CheckConstraint(one_of("status", enum_values(BedStatus)), name="status_known"),
        CheckConstraint(
            "(status = 'occupied') = (current_patient_id IS NOT NULL)",
            name="occupied_iff_patient",
        ),
        Index("ix_ward_beds_ward_id_status", "ward_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    ward_id: Mapped[int] = mapped_column(ForeignKey("wards.id"))
    bed_number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=BedStatus.AVAILABLE.value)
    current_patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), unique=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PatientAdmission(Base):
    """A stay in a bed; active until discharged. One active admission per patient and per bed."""

    __tablename__ = "patient_admissions"
    __table_args__ = (
        Index(
            "uq_patient_admissions_active_patient",
            "patient_id",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
        Index(
            "uq_patient_admissions_active_bed",
            "bed_id",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
        Index("ix_patient_admissions_admitted_at", "admitted_at"),
        # The current admissions by admission time (the patient list and its date filters): without it a
        # date filter made the database range over every admission ever made in those dates.
        Index(
            "ix_patient_admissions_active_admitted_at",
            "admitted_at",
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    bed_id: Mapped[int] = mapped_column(ForeignKey("ward_beds.id"), index=True)
    admitted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(200))
    chief_complaint: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    bulk_operation_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_operations.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PatientDischarge(Base):
    """The end of one admission."""

    __tablename__ = "patient_discharges"
    __table_args__ = (
        CheckConstraint(one_of("discharge_status", DISCHARGE_STATUSES), name="discharge_status_known"),
        # The reports read the discharges of a period (and the stays ending after a day) from this index
        # alone, without visiting each discharge's row: it holds every column they need of it.
        Index(
            "ix_patient_discharges_discharged_at_covering",
            "discharged_at",
            "admission_id",
            "discharge_status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    admission_id: Mapped[int] = mapped_column(ForeignKey("patient_admissions.id"), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    discharged_at: Mapped[datetime] = mapped_column(UtcDateTime)
    discharge_status: Mapped[str] = mapped_column(String(32), default="recovered")
    discharge_notes: Mapped[str | None] = mapped_column(Text)
    bulk_operation_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_operations.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PatientNotification(Base):
    """A caregiver notification about an admission, transfer or discharge, or a record that none could be
    sent."""

    __tablename__ = "patient_notifications"
    __table_args__ = (
        CheckConstraint(one_of("kind", NOTIFICATION_KINDS), name="kind_known"),
        CheckConstraint(one_of("status", NOTIFICATION_STATUSES), name="status_known"),
        Index("ix_patient_notifications_status_id", "status", "id"),  # the courier's pending ones
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    caregiver_id: Mapped[int | None] = mapped_column(ForeignKey("caregivers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    bulk_operation_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_operations.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # What it is about (None before 0012): the ward and bed of the event (the new one for a transfer).
    ward_code: Mapped[str | None] = mapped_column(String(64))
    bed_code: Mapped[str | None] = mapped_column(String(64))
    event_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # E-mail delivery: tries that met a temporary refusal, when it went, why it did not (a short code),
    # and the daemon sending it (``owners``) since when, while the status is email_sending.
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failure: Mapped[str | None] = mapped_column(String(32))
    sender: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # after a temporary refusal


class BulkOperation(Base):
    """One processed file (or report request): the seed's BulkOperation plus what a file pipeline needs."""

    __tablename__ = "bulk_operations"
    __table_args__ = (
        # From the operation descriptors: a new operation type needs a migration that widens this
        # (tests/test_check_constraints.py compares the migrated constraint with the descriptors).
        CheckConstraint(one_of("operation_type", OPERATION_NAMES), name="operation_type_known"),
        CheckConstraint(one_of("status", enum_values(OperationStatus)), name="status_known"),
        Index("ix_bulk_operations_status_created_at", "status", text("created_at DESC")),
        Index("ix_bulk_operations_initiated_by_created_at", "initiated_by_id", text("created_at DESC")),
        Index("ix_bulk_operations_type_sha256", "operation_type", "sha256"),
        # The history's pages (processor/adapters/database/history.py), newest first by id: with a type,
        # status or date filter, a page is one range of one of these indexes, however long the history.
        Index("ix_bulk_operations_operation_type_id", "operation_type", "id"),
        Index("ix_bulk_operations_status_id", "status", "id"),
        Index("ix_bulk_operations_created_at_id", "created_at", "id"),
        Index("ix_bulk_operations_sender_id", "sender", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=OperationStatus.PENDING.value)
    initiated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    input_file: Mapped[str | None] = mapped_column(String(1024))
    output_file: Mapped[str | None] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(255))
    total_records: Mapped[int] = mapped_column(Integer, default=0)
    processed_records: Mapped[int] = mapped_column(Integer, default=0)
    successful_records: Mapped[int] = mapped_column(Integer, default=0)
    failed_records: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # Refreshed while a daemon works on the file; a stale one on another host means that daemon died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When retention deleted (some of) its outbox files (outbox_retention_days); the row itself stays.
    outputs_purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A dry run (``wardbulk validate``): read and checked, never applied, also when recovery resumes it.
    dry_run: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The configured sender whose file this was (``[[senders]]``), recorded when it was registered.
    sender: Mapped[str | None] = mapped_column(String(64))

    @property
    def duration(self) -> float | None:
        """Seconds from start to completion, or None while not both are known (the seed's ``duration``)."""
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()

    @property
    def success_rate(self) -> float:
        """Successful records as a percentage of all records; 0.0 when there were none."""
        if not self.total_records:
            return 0.0
        return round(100.0 * self.successful_records / self.total_records, 2)


OPERATION_DURATION = OperationDuration(BulkOperation.started_at, BulkOperation.completed_at)
# The history statistics' medians and p95s: each is one walk along an index in duration order, per type
# or over all; the status and date filters are checked in the index too. PostgreSQL reads an expression
# from an index alone only when the index holds the columns it is made of: hence INCLUDE.
Index(
    "ix_bulk_operations_type_duration",
    BulkOperation.operation_type,
    OPERATION_DURATION,
    BulkOperation.status,
    BulkOperation.created_at,
    postgresql_include=["started_at", "completed_at"],
)
Index(
    "ix_bulk_operations_duration",
    OPERATION_DURATION,
    BulkOperation.status,
    BulkOperation.created_at,
    postgresql_include=["started_at", "completed_at"],
)


class ScheduledRun(Base):
    """A claim on one scheduled report for one period: only the claimer writes it, so it is written once."""

    __tablename__ = "scheduled_runs"
    __table_args__ = (UniqueConstraint("schedule_name", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_name: Mapped[str] = mapped_column(String(200))
    period_key: Mapped[str] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    output_file: Mapped[str | None] = mapped_column(String(1024))


class FileClaim(Base):
    """The same bytes are applied at most once per operation type: one row per (type, SHA-256).

    Inserted with the operation's registration; released (deleted) when the operation fails with nothing
    applied, so a corrected resend of identical bytes is not refused as a duplicate.
    """

    __tablename__ = "file_claims"
    __table_args__ = (UniqueConstraint("operation_type", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_type: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    operation_id: Mapped[int] = mapped_column(ForeignKey("bulk_operations.id"), unique=True)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DaemonHeartbeat(Base):
    """One daemon process (its owner name ``host:pid:start:namespace``) and its last sign of life."""

    __tablename__ = "daemon_heartbeats"

    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    beat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused: Mapped[bool] = mapped_column(Boolean)
    files_processed: Mapped[int] = mapped_column(Integer)

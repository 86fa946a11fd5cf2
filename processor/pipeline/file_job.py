"""``FileJob``: one registered file, the single owner of everything that belongs to it.

Its BulkOperation (``lifecycle``), its claimed copy in ``.processing/`` and the names there (the spool),
its outbox files and their partials, and its summary. Every step of the pipeline, recovery and
publishing works on a file through its job; nothing else builds those names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from processor.adapters import inbox
from processor.adapters.database import operation_records as records
from processor.adapters.database.lifecycle import Committed, Lifecycle
from processor.adapters.inbox import ClaimedFile
from processor.adapters.outbox import OutboxFiles, discard_reports
from processor.adapters.owners import token
from processor.core.operation_kinds import REPORT_WRITERS
from processor.core.operation_types import OperationStatus
from processor.core.problems import FileRejected
from processor.logs import get_logger
from processor.pipeline.context import Pipeline

log = get_logger(__name__)


@dataclass(frozen=True)
class FileOutcome:
    """How one file ended."""

    operation_id: int
    status: OperationStatus
    error_code: str | None
    counts: records.Counts
    summary: Path | None


@dataclass(frozen=True)
class FileJob:
    """One registered file: its claimed copy, its operation and where its outputs go.

    ``inherited`` (the default) when the operation may have had another owner before: recovery's jobs.
    A job this process registered a moment ago (``inherited=False``) has no other owner's leftovers to
    look for, so cleaning up after it removes files by name instead of listing folders.
    """

    claimed: ClaimedFile
    lifecycle: Lifecycle
    sha256: str | None
    started_at: datetime
    files: OutboxFiles
    inherited: bool = True
    dry_run: bool = False  # read and checked, never applied (``wardbulk validate``)
    sender: str | None = None  # the configured sender whose file it is (recorded at registration)

    @property
    def operation_id(self) -> int:
        return self.lifecycle.operation_id

    @property
    def spool(self) -> Path:
        """Where the valid rows' payloads wait between validation and the transaction."""
        return self.claimed.path.with_name(f".op{self.operation_id}.{self.files.owner_token}.spool")

    @property
    def rejected_rows(self) -> Path:
        """Where the failed rows wait until the file's encoding is known (``rejected_rows``)."""
        return self.claimed.path.with_name(f".op{self.operation_id}.{self.files.owner_token}.rejected.spool")

    @property
    def may_have_reports(self) -> bool:
        """Whether report partials of this operation may exist: a fresh job of a type that writes no
        reports has none to publish or discard, and does not list outbox/reports/ (a scan per file)."""
        return self.inherited or self.claimed.operation_type in REPORT_WRITERS

    def discard_work(self) -> None:
        """Remove this owner's partial outputs (reports included) and spool."""
        self.files.discard_partials()
        if self.may_have_reports:
            discard_reports(self.files.folder.parent, self.operation_id, self.files.owner_token)
        self.spool.unlink(missing_ok=True)
        self.rejected_rows.unlink(missing_ok=True)

    def discard_leftovers(self) -> None:
        """After publishing: this owner's leftovers, and every owner's if the job may have had others."""
        if self.inherited:
            self.discard_everyones_work()
        else:
            self.discard_work()

    def discard_everyones_work(self) -> None:
        """Remove every owner's partial outputs and spools of this operation (the others are dead)."""
        self.files.discard_everyones_partials()
        discard_reports(self.files.folder.parent, self.operation_id)
        for spool in self.claimed.path.parent.glob(f".op{self.operation_id}.*.spool"):
            spool.unlink(missing_ok=True)

    def interrupt(self) -> None:
        """After a graceful stop: nothing of the attempt is kept, and the operation waits, pending."""
        self.discard_work()
        self.lifecycle.interrupt()
        log.info("file_interrupted", operation_id=self.operation_id, file=self.claimed.original_name)

    def summary(
        self,
        status: OperationStatus,
        rejection: FileRejected | None,
        counts: records.Counts,
        completed: datetime,
    ) -> dict[str, Any]:
        """summary.json's fields that the job knows; the caller adds the error report's."""
        return {
            "operation_id": self.operation_id,
            "operation_type": self.claimed.operation_type.value,
            "status": status.value,
            "input_file": self.claimed.original_name,
            "sha256": self.sha256,
            "total_records": counts.total,
            "successful_records": counts.successful,
            "failed_records": counts.failed,
            "started_at": self.started_at.isoformat(),
            "completed_at": completed.isoformat(),
            "duration_s": round((completed - self.started_at).total_seconds(), 3),
            "success_rate": round(100 * counts.successful / counts.total, 2) if counts.total else 0.0,
            "error_code": rejection.code.value if rejection else None,
            "error_message": rejection.message if rejection else None,
            **({"dry_run": True} if self.dry_run else {}),
            **({"sender": self.sender} if self.sender else {}),
        }

    def outputs(self) -> dict[str, str]:
        """summary.json's ``outputs``: the names of the three files every operation has."""
        return {kind.split(".")[0]: self.files.final(kind).name for kind in self.files.kinds}


def register(
    pipeline: Pipeline,
    claimed: ClaimedFile,
    sha256: str | None,
    dry_run: bool = False,
    sender: str | None = None,
) -> FileJob:
    """Register a freshly claimed file as a pending BulkOperation and bind the file to it;
    ``dry_run``: it is to be read and checked only, never applied. Its sender is recorded with it: the
    one whose own folder it came from (``sender``), else the one whose files its name matches (none when
    no sender, or several, match: ``_start`` refuses the latter)."""
    if sender is None:
        senders = pipeline.settings.sender_of(claimed.operation_type, claimed.original_name)
        sender = senders[0].name if len(senders) == 1 else None
    new = records.NewOperation(
        claimed.operation_type, claimed.original_name, sha256, claimed.owner, pipeline.host, dry_run, sender
    )
    now = pipeline.clock()
    lifecycle = Lifecycle.register(pipeline.engine, pipeline.clock, new, now)
    bound = inbox.bind_to_operation(claimed, lifecycle.operation_id)
    log.info(
        "file_claimed",
        operation_id=lifecycle.operation_id,
        file=claimed.original_name,
        operation=claimed.operation_type.value,
    )
    return job_for(
        pipeline, bound, lifecycle.operation_id, sha256, now, inherited=False, dry_run=dry_run, sender=sender
    )


def job_for(
    pipeline: Pipeline,
    claimed: ClaimedFile,
    operation_id: int,
    sha256: str | None,
    started_at: datetime,
    owner: str | None = None,
    inherited: bool = True,
    dry_run: bool = False,
    sender: str | None = None,
) -> FileJob:
    """The job of a registered operation (also rebuilt by recovery from the database row).

    ``owner`` names whose temporary files the job uses: this process's, unless recovery publishes what
    a dead owner committed. ``inherited``: see ``FileJob``. Its progress is written from
    ``pipeline.progress_after_s`` after ``started_at`` on (a job recovery resumes started long ago).
    """
    files = OutboxFiles.for_operation(
        pipeline.settings.outbox_dir,
        claimed.operation_type,
        claimed.original_name,
        operation_id,
        token(owner or pipeline.host),
    )
    quiet_until = started_at + timedelta(seconds=pipeline.progress_after_s)
    lifecycle = Lifecycle(pipeline.engine, pipeline.clock, pipeline.host, operation_id, quiet_until)
    return FileJob(claimed, lifecycle, sha256, started_at, files, inherited, dry_run, sender)


__all__ = ["Committed", "FileJob", "FileOutcome", "job_for", "register"]

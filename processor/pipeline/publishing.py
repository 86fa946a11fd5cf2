"""After the commit: the outbox partials renamed into place (summary last), then the input moved on.

Safe to repeat (recovery does, after a crash here): what is already done is skipped. Several files are
published together when they queued up (the daemon's publisher): every folder is fsynced once per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processor.adapters import inbox
from processor.adapters.database import operation_records as records
from processor.adapters.database.lifecycle import Committed
from processor.adapters.outbox import publish_outboxes, publish_reports, write_atomically
from processor.core.operation_types import OperationStatus
from processor.core.problems import Code, FileRejected
from processor.logs import get_logger
from processor.pipeline.context import Pipeline
from processor.pipeline.file_job import FileJob, FileOutcome
from processor.pipeline.validation import nothing_validated, summary_of

log = get_logger(__name__)


@dataclass(frozen=True)
class Decided:
    """A registered file whose fate is committed: publishing its outbox and moving it are left."""

    job: FileJob
    committed: Committed


def publish(pipeline: Pipeline, job: FileJob, committed: Committed) -> FileOutcome:
    """Rename the outbox partials into place and move the input to the archive or beside its report."""
    return publish_all(pipeline, [Decided(job, committed)])[0]


def publish_all(pipeline: Pipeline, decided: Sequence[Decided]) -> list[FileOutcome]:
    """``publish`` for several files at once, in order: every folder is fsynced once per step for all of
    them (see ``publish_outboxes``), each input moved on only after its summary is durable."""
    for job, committed in ((d.job, d.committed) for d in decided):
        if committed.status == OperationStatus.COMPLETED and job.may_have_reports:
            publish_reports(pipeline.settings.outbox_dir, job.operation_id, job.files.owner_token)
    publish_outboxes([d.job.files for d in decided])
    return [_move_on(pipeline, d.job, d.committed) for d in decided]


def _move_on(pipeline: Pipeline, job: FileJob, committed: Committed) -> FileOutcome:
    """After its outbox is published: the input to the archive (or beside its report), leftovers gone."""
    status, counts = committed.status, committed.counts
    if not job.files.final("summary.json").exists():
        write_atomically(job.files.final("summary.json"), _summary_from_record(pipeline, job))
    # Leftovers (the spool, other owners' partials) go while the input is still bound: a crash after
    # the move would leave them to no one (recovery finds an operation's files by its bound input).
    job.discard_leftovers()
    if status in (OperationStatus.COMPLETED, OperationStatus.VALIDATED):
        inbox.archive(job.claimed, pipeline.settings.archive_dir, job.operation_id, pipeline.clock())
    else:
        inbox.reject(job.claimed, pipeline.settings.outbox_dir, job.operation_id)
    log.info(
        "file_processed",
        operation_id=job.operation_id,
        file=job.claimed.original_name,
        status=status.value,
        total=counts.total,
        successful=counts.successful,
        failed=counts.failed,
    )
    summary = job.files.final("summary.json")
    return FileOutcome(job.operation_id, status, committed.error_code, counts, summary)


def _summary_from_record(pipeline: Pipeline, job: FileJob) -> dict[str, Any]:
    """The summary as the database knows it, for a committed file whose summary partial was lost."""
    row = records.load(pipeline.engine, job.operation_id)
    counts = records.Counts(row.total_records, row.successful_records, row.failed_records)
    completed = row.completed_at or pipeline.clock()
    rejection = FileRejected.single(Code(row.error_code), row.error_message or "") if row.error_code else None
    summary = summary_of(job, OperationStatus(row.status), rejection, counts, completed, nothing_validated())
    summary["errors_total"] = None  # unknown: the detail was in the lost partial; errors.csv has it
    return summary

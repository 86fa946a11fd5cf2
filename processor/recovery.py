"""Recovery: nothing stays claimed, pending or processing after a crash or a stop.

Runs at start and then with every rescan, so a running daemon also finishes what a dead peer left.
Only abandoned work is touched (``owners.is_abandoned``: on this host the owner's pid is gone; on another
host its heartbeat is stale), and ownership changes hands by an atomic compare-and-set.

- A file claimed but never registered goes back to its inbox folder (never over a newer file).
- An operation whose transaction committed (completed/failed) but whose outbox or archive step did not
  finish: the outbox partials are published and the file moved on.
- An operation that never committed (pending/processing): processed again from the start, under the
  same operation id.
- Then, when asked (at start, after a pause for the host) or when anything above was left over, the
  temporary files that no process will finish are removed (``leftovers``): spools, partials, copies
  half made, whichever step a crash interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from processor.adapters import inbox, leftovers
from processor.adapters.database import operation_records as records
from processor.adapters.database.models import BulkOperation
from processor.adapters.owners import is_abandoned
from processor.core.names import display_name
from processor.core.operation_kinds import REPORT_WRITERS, OperationType
from processor.core.operation_types import OperationStatus
from processor.core.problems import Code
from processor.logs import get_logger
from processor.pipeline import (
    Committed,
    FileJob,
    FileOutcome,
    Interrupted,
    Lifecycle,
    Pipeline,
    is_host_fault,
    job_for,
    publish,
    run_operation,
)

log = get_logger(__name__)


def recover(pipeline: Pipeline, sweep: bool = False) -> list[FileOutcome]:
    """Resolve what crashed or stopped processes left unfinished; returns the files finished now.
    ``sweep``: remove leftover temporary files even if nothing else was left over.

    One entry's trouble stops no other: a step that fails for one file is logged and that file is tried
    again at the next recovery, while the rest go on. A fault of the host (``is_host_fault``: the
    database or a disk) raises, since every other step would meet it too.
    """
    returned = _return_abandoned_claims(pipeline)
    outcomes = _publish_committed(pipeline)
    taken_over = 0
    for operation in records.unfinished_operations(pipeline.engine):
        now = pipeline.clock()
        if not is_abandoned(operation.host, operation.heartbeat_at, now):
            continue
        if records.take_over(pipeline.engine, operation.id, operation.host, pipeline.host, now):
            taken_over += 1
            with _each_on_its_own(pipeline, "resume_failed", operation_id=operation.id):
                outcomes.append(_resume(pipeline, operation))
    if sweep or returned or outcomes or taken_over:
        _remove_leftovers(pipeline)
    return outcomes


def _remove_leftovers(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    removed = leftovers.sweep(
        settings.inbox_dir,
        settings.outbox_dir,
        settings.archive_dir,
        lambda ids: records.unfinished_among(pipeline.engine, ids),
    )
    if removed:
        log.info("leftovers_removed", files=len(removed))


@contextmanager
def _each_on_its_own(pipeline: Pipeline, event: str, **where: object) -> Iterator[None]:
    """Log and swallow what one entry's step raised, unless it is a stop or a fault of the host."""
    try:
        yield
    except (Interrupted, records.OwnershipLost):
        raise
    except Exception as exc:
        if is_host_fault(exc, pipeline.host_areas):
            raise
        log.exception(event, **where)


def _return_abandoned_claims(pipeline: Pipeline) -> int:
    """Claims of dead owners never registered go back to their inbox folder; returns how many."""
    inbox_dir = pipeline.settings.inbox_dir
    returned = 0
    for claim in list(inbox.unbound_claims(inbox_dir)):
        if is_abandoned(claim.claimer, claim.claimed_at, pipeline.clock()):
            needs_marker = pipeline.settings.operations.for_type(claim.operation_type).done_marker
            file = display_name(claim.original_name)
            with _each_on_its_own(
                pipeline, "claim_return_failed", operation=claim.operation_type.value, file=file
            ):
                inbox.return_to_inbox(inbox_dir, claim, with_done_marker=needs_marker)
                log.info("claim_returned", operation=claim.operation_type.value, file=file)
                returned += 1
    return returned


def _publish_committed(pipeline: Pipeline) -> list[FileOutcome]:
    outcomes = []
    for operation in records.committed_but_unpublished(
        pipeline.engine, inbox.bound_operation_ids(pipeline.settings.inbox_dir)
    ):
        job = _job(pipeline, operation, owner=operation.host)  # the committer's partials
        if job is None:
            continue  # another process finished publishing it a moment ago
        counts = records.Counts(
            operation.total_records, operation.successful_records, operation.failed_records
        )
        committed = Committed(OperationStatus(operation.status), operation.error_code, counts)
        with _each_on_its_own(pipeline, "publish_failed", operation_id=operation.id):
            outcomes.append(publish(pipeline, job, committed))
            log.info("publish_recovered", operation_id=operation.id)
    return outcomes


def _job(pipeline: Pipeline, operation: BulkOperation, owner: str | None = None) -> FileJob | None:
    operation_type = OperationType(operation.operation_type)
    claimed = inbox.claimed_file_of(
        pipeline.settings.inbox_dir, operation_type, operation.id, operation.input_file or ""
    )
    if claimed is None:
        return None
    started = operation.started_at or pipeline.clock()
    # A dry run stays one: resumed, it is checked again and never applied. A sender's file is read as
    # that sender's, as recorded when it was registered (its policy, aliases, values and dates).
    return job_for(
        pipeline,
        claimed,
        operation.id,
        operation.sha256,
        started,
        owner,
        dry_run=operation.dry_run,
        sender=operation.sender,
    )


def _resume(pipeline: Pipeline, operation: BulkOperation) -> FileOutcome:
    job = _job(pipeline, operation)
    if job is None:
        return _fail_without_file(pipeline, operation)
    log.info("operation_resumed", operation_id=operation.id, file=job.claimed.original_name)
    job.discard_everyones_work()  # the previous owner is gone; its half-written files are worthless
    return run_operation(pipeline, job)


def _fail_without_file(pipeline: Pipeline, operation: BulkOperation) -> FileOutcome:
    """No claimed file: a report run (command or schedule) died, or a file's owner died between
    registering and binding it (the file went back to the inbox)."""
    if operation.operation_type in REPORT_WRITERS and operation.sha256 is None:
        message = "the report run was interrupted before it finished; ask for the report again"
    else:
        message = "interrupted before reading; the file was returned to the inbox and is processed again"
    counts = records.Counts(0, 0, 0)
    Lifecycle(pipeline.engine, pipeline.clock, pipeline.host, operation.id).fail(
        counts, Code.INTERNAL_ERROR, [message]
    )
    log.info("operation_abandoned", operation_id=operation.id)
    return FileOutcome(operation.id, OperationStatus.FAILED, Code.INTERNAL_ERROR.value, counts, None)

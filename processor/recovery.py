"""Startup recovery: nothing stays claimed, pending or processing after a crash or a stop.

- A file claimed but never registered (the process died in between) goes back to its inbox folder.
- An operation whose transaction committed (completed/failed) but whose outbox or archive step did not
  finish: the outbox partials are published and the file moved on.
- An operation that never committed (pending/processing): processed again from the start, under the
  same operation id. Other hosts' unfinished operations are taken over only once their heartbeat is stale.
"""

from __future__ import annotations

from datetime import timedelta

from processor.adapters import inbox
from processor.adapters.database import operation_records as records
from processor.adapters.database.models import BulkOperation
from processor.core.operation_types import OperationStatus, OperationType
from processor.core.problems import Code
from processor.logs import get_logger
from processor.pipeline import FileOutcome, Job, Pipeline, job_for, publish, run_operation

log = get_logger(__name__)
STALE_AFTER = timedelta(minutes=10)


def recover(pipeline: Pipeline) -> list[FileOutcome]:
    """Resolve everything a previous run left unfinished; returns the outcomes of files finished now."""
    inbox_dir = pipeline.settings.inbox_dir
    for path, operation_type in list(inbox.unbound_claims(inbox_dir)):
        inbox.return_to_inbox(inbox_dir, path, operation_type)
        log.info("claim_returned", operation=operation_type.value, file=path.name.split("__", 1)[1])
    outcomes = _publish_committed(pipeline)
    now = pipeline.clock()
    for operation in records.unfinished_operations(pipeline.engine, pipeline.host, now - STALE_AFTER):
        if records.take_over(pipeline.engine, operation.id, pipeline.host, now - STALE_AFTER, now):
            outcomes.append(_resume(pipeline, operation))
    return outcomes


def _bound_files(pipeline: Pipeline) -> dict[int, tuple[OperationType, str]]:
    found = {}
    for operation_type in OperationType:
        folder = inbox.processing_folder(pipeline.settings.inbox_dir, operation_type)
        for path in folder.glob("op*__*"):
            found[int(path.name.split("__", 1)[0].removeprefix("op"))] = (operation_type, path.name)
    return found


def _publish_committed(pipeline: Pipeline) -> list[FileOutcome]:
    bound = _bound_files(pipeline)
    outcomes = []
    for operation in records.committed_but_unpublished(pipeline.engine, list(bound)):
        job = _job(pipeline, operation)
        if job is None:
            continue
        status = OperationStatus(operation.status)
        counts = records.Counts(
            operation.total_records, operation.successful_records, operation.failed_records
        )
        outcomes.append(publish(pipeline, job, status, operation.error_code, counts))
        log.info("publish_recovered", operation_id=operation.id)
    return outcomes


def _job(pipeline: Pipeline, operation: BulkOperation) -> Job | None:
    operation_type = OperationType(operation.operation_type)
    claimed = inbox.claimed_file_of(pipeline.settings.inbox_dir, operation_type, operation.id)
    if claimed is None:
        return None
    return job_for(
        pipeline, claimed, operation.id, operation.sha256, operation.started_at or pipeline.clock()
    )


def _resume(pipeline: Pipeline, operation: BulkOperation) -> FileOutcome:
    job = _job(pipeline, operation)
    if job is None:
        return _fail_without_file(pipeline, operation)
    log.info("operation_resumed", operation_id=operation.id, file=job.claimed.original_name)
    return run_operation(pipeline, job)


def _fail_without_file(pipeline: Pipeline, operation: BulkOperation) -> FileOutcome:
    """The process died between registering a file and binding it: the file went back to the inbox."""
    now = pipeline.clock()
    message = "interrupted before reading; the file was returned to the inbox and is processed again"
    counts = records.Counts(0, 0, 0)
    records.fail(pipeline.engine, operation.id, counts, Code.INTERNAL_ERROR.value, [message], "", now)
    log.info("operation_abandoned", operation_id=operation.id)
    return FileOutcome(operation.id, OperationStatus.FAILED, Code.INTERNAL_ERROR.value, counts, None)

"""The use case, top to bottom: a claimed file becomes a committed BulkOperation.

    register → start (type, name, size, duplicate bytes) → validate to the spool (phase 1, read-only)
    → policy (on_row_error, max_error_rate) → apply the spool in ONE transaction that also marks the
    operation completed (phase 2) → commit

Publishing the outbox and moving the input come after (``publishing``). What any exception makes of the
file is decided in one place, ``faults.DISPOSITIONS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from processor.adapters.database import operation_records as records
from processor.adapters.database.lifecycle import Committed
from processor.adapters.database.unit_of_work import UnitOfWork
from processor.adapters.folders import REPORTS_FOLDER
from processor.adapters.inbox import ClaimedFile
from processor.adapters.outbox import ERRORS_HEADER, ExcelCsvWriter, write_json
from processor.core.operation_types import OperationStatus
from processor.core.problems import Code, FileRejected
from processor.core.report_request import report_file_name
from processor.logs import get_logger
from processor.operations.base import RunContext, Trigger
from processor.operations.registry import Operation, is_available, operation_for, trigger_for
from processor.pipeline import checks
from processor.pipeline.context import Pipeline
from processor.pipeline.faults import (
    Disposition,
    database_failure,
    disposition_of,
    is_host_fault,
    retry_reason,
)
from processor.pipeline.file_job import FileJob, FileOutcome, register
from processor.pipeline.publishing import Decided, publish
from processor.pipeline.rejection import fail_crashed, reject_after_validation, reject_file
from processor.pipeline.runtime import Heartbeat, collector_spares_the_heap
from processor.pipeline.senders import sender_problem, settings_for
from processor.pipeline.spool import read_spool
from processor.pipeline.validation import (
    RESULT_TAIL,
    NotificationsFile,
    Validation,
    first_line_index,
    nothing_validated,
    summary_of,
    validate_to_spool,
)

log = get_logger(__name__)
TRANSIENT_ATTEMPTS = 3


def process_claimed(pipeline: Pipeline, claimed: ClaimedFile, dry_run: bool = False) -> FileOutcome:
    """Register a freshly claimed file as a BulkOperation and see it through to the outbox; a
    ``dry_run`` is read and checked the same way and applies nothing."""
    decided = decide_claimed(pipeline, claimed, dry_run)
    return publish(pipeline, decided.job, decided.committed)


def decide_claimed(
    pipeline: Pipeline, claimed: ClaimedFile, dry_run: bool = False, sender: str | None = None
) -> Decided:
    """``process_claimed`` up to and with the commit; ``publish_all`` finishes it (the daemon publishes
    files in batches). Until then the file waits, bound to its operation, where recovery finds it.
    ``sender``: the sender whose own folder it came from (else its name is matched with senders')."""
    sha256 = checks.sha256_if_readable(claimed, pipeline.settings.max_file_bytes)
    job = register(pipeline, claimed, sha256, dry_run, sender)
    return Decided(job, decide(pipeline, job))


def run_operation(pipeline: Pipeline, job: FileJob) -> FileOutcome:
    """Everything after registration; recovery calls it again for a file that never committed.

    Decisions that do not need the rows (not-csv, file-too-large, duplicate-file) are taken again here,
    so that a crash between taking them and recording them cannot let such a file through. Publishing
    comes after the decision is committed and outside its error handling: a failure to publish (a full
    disk, say) must never turn a committed file into a "failed, nothing applied" report.
    """
    return publish(pipeline, job, decide(pipeline, job))


def decide(pipeline: Pipeline, job: FileJob) -> Committed:
    """The file's fate, committed. Whatever goes wrong with this one file ends as its failed summary;
    only a stop, a lost ownership and a fault of the host propagate, and then the file waits, claimed."""
    try:
        return _decide_unguarded(pipeline, job)
    except Exception as exc:
        areas = pipeline.host_areas
        if disposition_of(exc, areas) in (Disposition.STOP, Disposition.LOST) or is_host_fault(exc, areas):
            raise
        log.exception("file_crashed", operation_id=job.operation_id, file=job.claimed.original_name)
        return job.lifecycle.committed() or fail_crashed(pipeline, job)


def _decide_unguarded(pipeline: Pipeline, job: FileJob) -> Committed:
    rejection = _start(pipeline, job)
    if rejection is not None:
        return reject_file(pipeline, job, rejection)
    operation, trigger = operation_for(job.claimed.operation_type), trigger_for(job.claimed.operation_type)
    if trigger is not None:
        attempt = partial(_attempt_trigger, pipeline, job, trigger)
    else:
        assert operation is not None  # checked by _start
        attempt = partial(_attempt, pipeline, job, operation)
    with Heartbeat(job.lifecycle), collector_spares_the_heap():
        return _with_retries(pipeline, job, attempt)


def _start(pipeline: Pipeline, job: FileJob) -> FileRejected | None:
    """The decisions that need no rows (availability, type, name, size, duplicate bytes); else the file
    starts: its bytes are claimed and its operation marked processing (from zero) in one transaction."""
    operation_type = job.claimed.operation_type
    if not is_available(operation_type):
        return FileRejected.single(
            Code.INTERNAL_ERROR, f"operation {operation_type.value} is not available in this version"
        )
    if not job.claimed.is_regular_file:  # not even a trigger may be a link, a FIFO or a folder
        return checks.not_a_regular_file()
    claim = None
    if trigger_for(operation_type) is None:  # a trigger's content is ignored: any name, size, bytes again
        problem = checks.precheck(job.claimed, pipeline.settings) or sender_problem(pipeline, job)
        problem = problem or _applied_already(pipeline, job)
        if problem is not None:
            return problem
        if job.sha256 is not None and not job.dry_run:  # a dry run takes no claim on the bytes
            claim = records.BytesToClaim(operation_type, job.sha256)
    holder = job.lifecycle.start(claim)
    if holder is not None and holder != job.operation_id:
        return _duplicate(holder)
    return None


def _applied_already(pipeline: Pipeline, job: FileJob) -> FileRejected | None:
    """For a dry run: what a real run would meet, the same bytes already applied (nothing is claimed)."""
    if not job.dry_run or job.sha256 is None:
        return None
    holder = records.bytes_holder(pipeline.engine, job.claimed.operation_type, job.sha256)
    return None if holder is None else _duplicate(holder)


def _duplicate(holder: int) -> FileRejected:
    return FileRejected.single(
        Code.DUPLICATE_FILE, f"the same file was already processed as operation {holder}; nothing was applied"
    )


def _with_retries(pipeline: Pipeline, job: FileJob, attempt_once: Callable[[], Committed]) -> Committed:
    """Phases 1 and 2 (``attempt_once``), retried with backoff on transient database failures and
    conflicts."""
    for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
        try:
            return attempt_once()
        except Exception as exc:
            committed = _after_failed_attempt(pipeline, job, exc, attempt)
            if committed is not None:
                return committed
            time.sleep(pipeline.backoff_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _after_failed_attempt(pipeline: Pipeline, job: FileJob, exc: Exception, attempt: int) -> Committed | None:
    """What ``faults.DISPOSITIONS`` makes of an attempt that raised ``exc``: the file's committed fate,
    None to try again, or ``exc`` raised again for ``decide`` to judge."""
    disposition = disposition_of(exc, pipeline.host_areas)
    if disposition is Disposition.REJECT:
        assert isinstance(exc, FileRejected)
        return reject_file(pipeline, job, exc)
    if disposition is Disposition.STOP:
        job.interrupt()
        raise exc
    if disposition is Disposition.REFUSED:
        return reject_file(pipeline, job, database_failure(exc))
    if disposition is not Disposition.RETRY:
        raise exc
    log.warning("database_retry", operation_id=job.operation_id, attempt=attempt, error=retry_reason(exc))
    # A commit whose acknowledgement was lost raises too: then the file is done, not to be redone.
    # (If the database cannot even say, this raises and nothing is discarded: recovery decides.)
    committed = job.lifecycle.committed()
    if committed is not None:
        return committed
    job.discard_work()
    return reject_file(pipeline, job, database_failure(exc)) if attempt == TRANSIENT_ATTEMPTS else None


def _discard_earlier_work(job: FileJob) -> None:
    """Before an attempt: what an earlier owner left (an attempt's own retry was cleaned up by
    ``_after_failed_attempt``). A job registered by this process has none: its names carry its new
    operation id, and nothing is looked for (a small file's many unlinks of nothing)."""
    if job.inherited:
        job.discard_work()


def _attempt(pipeline: Pipeline, job: FileJob, operation: Operation) -> Committed:
    _discard_earlier_work(job)
    settings = settings_for(pipeline, job)
    with first_line_index(job) as first_lines:
        context = RunContext(
            job.operation_id,
            pipeline.clock(),
            settings.notify,
            first_lines,
            email=pipeline.settings.notifications.email,
            zone=pipeline.settings.zone(),
            upsert=settings.mode == "upsert",
            clear_marker=settings.clear_marker,
        )
        run = operation.start(context)
        validation = validate_to_spool(pipeline, job, operation, run)
    policy = checks.policy_rejection(settings, validation.failed, validation.total)
    if policy is not None:
        return reject_after_validation(pipeline, job, validation, policy)
    if job.dry_run:
        return _validated(pipeline, job, validation)
    with UnitOfWork(pipeline.engine, reports=pipeline.reports) as uow:
        notifications = NotificationsFile(job.files.partial("notifications.csv"))
        store = operation.stores_on(uow)
        for payloads in read_spool(job.spool):
            pipeline.check_stop()
            notifications.add(run.apply(payloads, store))
        notifications.close()
        output = str(job.files.final("result.csv"))
        messages = validation.report.first_messages
        completed_at = job.lifecycle.complete(uow.connection, validation.counts, messages, output)
        _write_completed_summary(job, validation, completed_at, notifications)
        validation.wait_until_on_disk()
        uow.commit()
    return Committed(OperationStatus.COMPLETED, None, validation.counts)


def _validated(pipeline: Pipeline, job: FileJob, validation: Validation) -> Committed:
    """A dry run ends after its checks: nothing applied, its files say what a real run would do."""
    validation.wait_until_on_disk()
    job.spool.unlink(missing_ok=True)
    now = pipeline.clock()
    counts = validation.counts
    summary = summary_of(job, OperationStatus.VALIDATED, None, counts, now, validation)
    write_json(job.files.partial("summary.json"), summary)
    output = str(job.files.final("result.csv"))
    job.lifecycle.validated(counts, validation.report.first_messages, output, now)
    return Committed(OperationStatus.VALIDATED, None, counts)


def _write_completed_summary(
    job: FileJob, validation: Validation, completed_at: datetime, notifications: NotificationsFile
) -> None:
    summary = summary_of(job, OperationStatus.COMPLETED, None, validation.counts, completed_at, validation)
    summary["notifications"] = notifications.count
    if notifications.count:
        summary["outputs"]["notifications"] = job.files.final("notifications.csv").name
    write_json(job.files.partial("summary.json"), summary)


def _attempt_trigger(pipeline: Pipeline, job: FileJob, trigger: Trigger) -> Committed:
    """A trigger file: write the export it asks for; its content is never read."""
    _discard_earlier_work(job)
    name = report_file_name(trigger.request, pipeline.clock(), f"op{job.operation_id}")
    with UnitOfWork(pipeline.engine, reports=pipeline.reports) as uow:
        rows = uow.reports.write_report(trigger.request, name)
        counts = records.Counts(rows, rows, 0)
        result = ExcelCsvWriter(job.files.partial("result.csv"), [*RESULT_TAIL, "report_file"])
        result.write(["", "ok", f"{rows} patients exported", name])
        result.close()
        ExcelCsvWriter(job.files.partial("errors.csv"), ERRORS_HEADER).close()
        output = str(pipeline.settings.outbox_dir / REPORTS_FOLDER / name)
        completed_at = job.lifecycle.complete(uow.connection, counts, [], output)
        summary = summary_of(job, OperationStatus.COMPLETED, None, counts, completed_at, nothing_validated())
        summary["outputs"]["report"] = f"{REPORTS_FOLDER}/{name}"  # relative to the outbox
        write_json(job.files.partial("summary.json"), summary)
        uow.commit()
    return Committed(OperationStatus.COMPLETED, None, counts)

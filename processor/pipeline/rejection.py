"""Failing a file: its outputs say why, nothing of it is applied, and its operation is recorded failed.

Three ways: a file-level rejection (fresh outputs with the problem), a policy rejection after validation
(the row detail kept, ok rows marked not applied), and the last resort for a file that crashed even its
rejection (the database record alone; publishing writes the summary from it).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from processor.adapters.database import operation_records as records
from processor.adapters.database.lifecycle import Committed
from processor.adapters.outbox import ERRORS_HEADER, ExcelCsvWriter, write_json
from processor.core.csv_reading import MAX_FIELD_CHARS
from processor.core.operation_types import OperationStatus
from processor.core.problems import Code, FileRejected
from processor.logs import get_logger
from processor.pipeline.context import Pipeline
from processor.pipeline.faults import is_host_fault
from processor.pipeline.file_job import FileJob
from processor.pipeline.validation import RESULT_TAIL, ErrorReport, Validation, summary_of

log = get_logger(__name__)
CRASHED = "an internal error stopped the file; nothing was applied (the daemon log has the details)"


def reject_file(pipeline: Pipeline, job: FileJob, rejection: FileRejected) -> Committed:
    """A file-level rejection: fresh outputs with the problem(s), the file moved beside them."""
    job.discard_work()
    ExcelCsvWriter(job.files.partial("result.csv"), RESULT_TAIL).close()
    errors = ExcelCsvWriter(job.files.partial("errors.csv"), ERRORS_HEADER)
    validation = Validation(ErrorReport(errors, pipeline.settings.error_detail_limit))
    validation.report.add(rejection.problems)
    errors.close()
    return _finish_failed(pipeline, job, rejection, validation)


def reject_after_validation(
    pipeline: Pipeline, job: FileJob, validation: Validation, rejection: FileRejected
) -> Committed:
    """A policy rejection keeps the row detail: errors.csv gets the file-level line, ok rows become errors."""
    validation.wait_until_on_disk()  # the rejection rewrites both files
    job.spool.unlink(missing_ok=True)
    # Nothing was applied, the valid rows neither: the file to send again is the whole original (moved
    # beside the report, in rejected/), not the failed rows alone.
    job.files.partial("rejected.csv").unlink(missing_ok=True)
    validation.rejected = None
    _mark_rows_not_applied(job.files.partial("result.csv"), validation.width, rejection.message)
    errors = ExcelCsvWriter(job.files.partial("errors.csv"), header=None, append=True)
    for problem in rejection.problems:
        errors.write(["", problem.column, problem.code.value, problem.message, ""])
    errors.close()
    validation.failed = validation.total
    validation.changes.clear()  # nothing was applied: no row created, updated or left unchanged
    return _finish_failed(pipeline, job, rejection, validation)


def fail_crashed(pipeline: Pipeline, job: FileJob) -> Committed:
    """Record the file as failed with ``internal-error``: with its fresh outbox files when they can be
    written, else in the database alone (publishing then writes the summary from the record)."""
    crashed = FileRejected.single(Code.INTERNAL_ERROR, CRASHED)
    try:
        return reject_file(pipeline, job, crashed)
    except Exception as exc:
        if is_host_fault(exc, pipeline.host_areas):
            raise
        log.exception("file_rejection_failed", operation_id=job.operation_id)
        job.discard_work()
        counts = records.Counts(0, 0, 0)
        job.lifecycle.fail(counts, Code.INTERNAL_ERROR, [CRASHED])
        return Committed(OperationStatus.FAILED, Code.INTERNAL_ERROR.value, counts)


def _mark_rows_not_applied(result_path: Path, width: int, reason: str) -> None:
    """Rewrite result.csv (streamed) so that rows that were valid but not applied say so.

    The outcome column is found by position (after the input's ``width`` columns and ``line``), never by
    name: an input may well have a column called "outcome" (a result.csv sent back, say).
    """
    outcome_at = width + 1
    temporary = result_path.with_name(result_path.name + ".rewrite")
    # Our own file: its cells may exceed the input limit by the apostrophe that neutralised them.
    csv.field_size_limit(max(csv.field_size_limit(), 4 * MAX_FIELD_CHARS))
    with result_path.open(encoding="utf-8-sig", newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        writer = ExcelCsvWriter(temporary, None)
        writer.write_neutralised(header)
        for row in reader:
            kept = [*row[:outcome_at], "error", f"not applied: {reason}"] if row[outcome_at] == "ok" else row
            writer.write_neutralised(kept + [""] * (len(header) - len(kept)))
        writer.close()
    os.replace(temporary, result_path)


def _finish_failed(
    pipeline: Pipeline, job: FileJob, rejection: FileRejected, validation: Validation
) -> Committed:
    now = pipeline.clock()
    counts = validation.counts
    summary = summary_of(job, OperationStatus.FAILED, rejection, counts, now, validation)
    write_json(job.files.partial("summary.json"), summary)
    messages = [rejection.message, *validation.report.first_messages]
    job.lifecycle.fail(counts, rejection.code, messages, str(job.files.final("errors.csv")), at=now)
    log.warning(
        "file_rejected",
        operation_id=job.operation_id,
        file=job.claimed.original_name,
        code=rejection.code.value,
        line=rejection.problems[0].line,
    )
    return Committed(OperationStatus.FAILED, rejection.code.value, counts)

"""Phase 1: read the file, validate its rows chunk by chunk, write result.csv and errors.csv partials,
spool the valid payloads and publish progress. Nothing is written to the ward tables here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import astuple, dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

from processor.adapters import entries
from processor.adapters.database import operation_records as records
from processor.adapters.database.unit_of_work import ReadOnlyUnitOfWork
from processor.adapters.first_lines import DiskFirstLineIndex
from processor.adapters.outbox import ERRORS_HEADER, NOTIFICATIONS_HEADER, ExcelCsvWriter
from processor.adapters.xlsx_input import is_workbook, read_xlsx
from processor.core.csv_reading import CsvFile, Decoding, Record, decode_lines, read_csv
from processor.core.operation_kinds import kind_of
from processor.core.operation_types import OperationStatus
from processor.core.problems import Code, FileRejected, RowError
from processor.operations.base import MemoryFirstLineIndex, OperationRun, RowOutcome
from processor.operations.ports import FirstLineIndex, NotificationLine
from processor.operations.registry import Operation
from processor.pipeline.context import Pipeline
from processor.pipeline.file_job import FileJob
from processor.pipeline.rejected_rows import RejectedRows
from processor.pipeline.senders import settings_for, shape_for
from processor.pipeline.spool import spool_chunk

T = TypeVar("T")
RESULT_TAIL = ("line", "outcome", "message")
# Files up to this size keep their keys' first lines in memory (see ``first_line_index``): some
# thousands of keys for real rows, a few megabytes even for rows of a dozen bytes. A workbook is
# compressed: its bytes hold some ten times the rows of a CSV's, so its limit is smaller by as much.
SMALL_FILE_BYTES = 256 * 1024
SMALL_WORKBOOK_BYTES = SMALL_FILE_BYTES // 16


@dataclass
class ErrorReport:
    """errors.csv, capped at a detail limit; counts stay complete. Without a writer it only counts."""

    writer: ExcelCsvWriter | None
    limit: int
    written: int = 0
    total: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    first_messages: list[str] = field(default_factory=list)

    def add(self, errors: list[RowError]) -> None:
        for error in errors:
            self.total += 1
            self.by_code[error.code.value] += 1
            if len(self.first_messages) < records.ERROR_MESSAGE_LIMIT:
                where = f"line {error.line}" if error.line else "file"
                self.first_messages.append(f"{where}: {error.message} ({error.code.value})")
            if self.writer is not None and self.written < self.limit:
                line = "" if error.line is None else error.line
                self.writer.write([line, error.column, error.code.value, error.message, error.value])
                self.written += 1

    @property
    def truncated(self) -> bool:
        return self.written < self.total

    def summary(self) -> dict[str, Any]:
        """summary.json's fields about the errors."""
        return {
            "errors_total": self.total,
            "errors_by_code": dict(self.by_code),
            "errors_truncated": self.truncated,
        }


@dataclass
class NotificationsFile:
    """The notifications CSV of one file, created at its first line (most files notify nobody)."""

    path: Path
    count: int = 0
    _writer: ExcelCsvWriter | None = None

    def add(self, lines: list[NotificationLine]) -> None:
        if not lines:
            return
        if self._writer is None:
            self._writer = ExcelCsvWriter(self.path, NOTIFICATIONS_HEADER, for_machines=True)
        for line in lines:
            self._writer.write(astuple(line))
        self.count += len(lines)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


@dataclass
class Validation:
    """Phase 1's findings."""

    report: ErrorReport
    width: int = 0  # header columns, to pad or cut ragged rows in result.csv
    created_width: int = 0  # the created-key columns after them
    total: int = 0
    failed: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    # result.csv and errors.csv reaching the disk (see ``ExcelCsvWriter.close_in_background``).
    syncing: list[Future[None]] = field(default_factory=list)
    rejected: RejectedRows | None = None  # the failed rows, for <stem>.op<N>.rejected.csv
    changes: Counter[str] = field(default_factory=Counter)  # valid rows by their "change" (upserts)
    dry_run: bool = False  # no key is created: result.csv leaves the created-key columns empty

    @property
    def counts(self) -> records.Counts:
        return records.Counts(self.total, self.total - self.failed, self.failed)

    def wait_until_on_disk(self) -> None:
        """Before the commit: result.csv and errors.csv are on disk (raises what their fsync raised)."""
        for syncing in self.syncing:
            syncing.result()

    def summary(self) -> dict[str, Any]:
        """summary.json's fields about the errors and the columns."""
        warnings = [f"unknown column {name!r} ignored" for name in self.unknown_columns]
        summary = {**self.report.summary(), "warnings": warnings}
        if self.changes:
            summary["changes"] = dict(self.changes)
        if self.rejected is not None and self.rejected.count:
            summary["rejected_rows"] = self.rejected.count - self.rejected.unwritable
            if self.rejected.unwritable:
                summary["rejected_rows_unwritable"] = self.rejected.unwritable
        return summary


def nothing_validated() -> Validation:
    """The findings of a file whose rows were never read (a file-level decision, a trigger)."""
    return Validation(ErrorReport(None, 0))


def chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items."""
    while chunk := list(islice(items, size)):
        yield chunk


def first_line_index(job: FileJob) -> AbstractContextManager[FirstLineIndex]:
    """Where a file's keys remember their first line: on disk, in flat memory at any size; in a
    dictionary for a small file (which then skips setting up a temporary database, a good part of a
    small file's time)."""
    small = SMALL_WORKBOOK_BYTES if is_workbook(job.claimed.original_name) else SMALL_FILE_BYTES
    if job.claimed.size <= small:
        return nullcontext(MemoryFirstLineIndex())
    return DiskFirstLineIndex()


def validate_to_spool(
    pipeline: Pipeline, job: FileJob, operation: Operation, run: OperationRun[Any, Any]
) -> Validation:
    """Read and validate the whole file, chunk by chunk; raises ``FileRejected`` for a file-level problem."""
    decoding = Decoding()
    with entries.open_input(job.claimed.path) as raw, job.spool.open("wb") as spool:
        identity = entries.identity_of(raw)
        csv_file = _read(raw, pipeline, job, operation, decoding)
        header = [*csv_file.labels, *RESULT_TAIL, *operation.created_columns]
        result = ExcelCsvWriter(job.files.partial("result.csv"), header)
        errors = ExcelCsvWriter(job.files.partial("errors.csv"), ERRORS_HEADER)
        validation = Validation(ErrorReport(errors, pipeline.settings.error_detail_limit))
        validation.dry_run = job.dry_run
        validation.width = len(csv_file.labels)
        validation.created_width = len(operation.created_columns)
        validation.unknown_columns = csv_file.unknown_columns
        validation.rejected = RejectedRows(
            job.rejected_rows, job.files.partial("rejected.csv"), csv_file.labels, csv_file.delimiter
        )
        try:
            for chunk in chunks(csv_file.records, pipeline.settings.chunk_size):
                _validate_chunk(pipeline, job, (operation, run), chunk, result, spool, validation)
        finally:
            # Their fsyncs run while the rows are applied, and with the summary's (the caller waits).
            validation.syncing = [result.close_in_background(), errors.close_in_background()]
        _check_unchanged(raw, identity)
    if validation.total == 0:
        raise FileRejected.single(Code.EMPTY_FILE, "the file has a header but no data rows")
    validation.rejected.finish(decoding)
    return validation


def _read(
    raw: BinaryIO, pipeline: Pipeline, job: FileJob, operation: Operation, decoding: Decoding
) -> CsvFile:
    """The file's header and records (a CSV's, or a workbook sheet's as text), in wardbulk's columns
    and values when it is a sender's. ``decoding`` learns how to write the rejected rows back: a
    workbook's as CSV UTF-8 with a byte order mark (what Excel opens as UTF-8), to be sent again so."""
    settings, shape = settings_for(pipeline, job), shape_for(pipeline, job)
    spec = kind_of(operation.operation_type).spec_for(upsert=settings.mode == "upsert")
    column_of = shape.column_of if shape is not None else None
    if is_workbook(job.claimed.original_name):
        decoding.bom = True
        csv_file = read_xlsx(raw, spec, settings.sheet, column_of)
        if shape is not None and shape.delimiter:  # its rejected rows, written so that it can send them
            csv_file.delimiter = shape.delimiter
    else:
        delimiter = shape.delimiter if shape is not None else None
        lines = decode_lines(raw, settings.encoding, decoding)
        csv_file = read_csv(lines, spec, delimiter, column_of)
    if shape is not None:  # a sender's encoding and delimiter are a CSV's; the rest applies to both
        dates = tuple(column for column in spec.known if "date" in column)
        csv_file.records = shape.translated(csv_file.records, dates)
    return csv_file


def _check_unchanged(raw: BinaryIO, identity: tuple[int, int]) -> None:
    """Refuse a file that someone wrote to (or truncated) while it was read: its rows are not what
    was sent, and its SHA-256 names other bytes."""
    if entries.identity_of(raw) != identity:
        raise FileRejected.single(
            Code.FILE_CHANGED,
            "the file changed while it was read (its sender was still writing it); nothing was applied: "
            "send it again, written under a .tmp name and renamed when complete",
        )


def _validate_chunk(
    pipeline: Pipeline,
    job: FileJob,
    operation_run: tuple[Operation, OperationRun[Any, Any]],
    chunk: list[Record],
    result: ExcelCsvWriter,
    spool: IO[bytes],
    validation: Validation,
) -> None:
    pipeline.check_stop()
    operation, run = operation_run
    with ReadOnlyUnitOfWork(pipeline.engine) as lookups:
        outcomes = run.validate(chunk, operation.lookups_on(lookups.connection))
    shape = (validation.width, validation.created_width, validation.dry_run)
    result.write_rows(
        [_result_row(record, outcome, *shape) for record, outcome in zip(chunk, outcomes, strict=True)]
    )
    failed = [(record, outcome) for record, outcome in zip(chunk, outcomes, strict=True) if outcome.errors]
    for record, outcome in failed:  # in file order, as errors.csv lists them
        validation.report.add(outcome.errors)
        if validation.rejected is not None:
            validation.rejected.add(record)
    validation.total += len(chunk)
    validation.failed += len(failed)
    validation.changes.update(
        change for o in outcomes if not o.errors and (change := o.created.get("change"))
    )
    spool_chunk(spool, [outcome.payload for outcome in outcomes if not outcome.errors])
    job.lifecycle.progress(validation.total)
    if pipeline.on_progress:
        pipeline.on_progress(validation.total)


def _result_row(
    record: Record, outcome: RowOutcome, width: int, created_width: int, dry_run: bool = False
) -> list[Any]:
    cells = record.raw[:width] + [""] * (width - len(record.raw))
    if outcome.ok and dry_run:  # a dry run creates nothing: no key to show
        return [*cells, record.line, "ok", "valid: would be applied", *[""] * created_width]
    if outcome.ok:
        return [*cells, record.line, "ok", "", *outcome.created.values()]
    return [
        *cells,
        record.line,
        "error",
        "; ".join(error.message for error in outcome.errors),
        *[""] * created_width,
    ]


def summary_of(
    job: FileJob,
    status: OperationStatus,
    rejection: FileRejected | None,
    counts: records.Counts,
    completed: datetime,
    validation: Validation,
) -> dict[str, Any]:
    """summary.json: the job's fields, then the errors', then who sent it and the outputs."""
    outputs = job.outputs()
    if validation.rejected is not None and validation.rejected.count > validation.rejected.unwritable:
        outputs["rejected"] = job.files.final("rejected.csv").name
    return {
        **job.summary(status, rejection, counts, completed),
        **validation.summary(),
        "initiated_by": job.claimed.owner,
        "outputs": outputs,
    }

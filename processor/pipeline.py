"""The file pipeline, written once for every operation type.

claim → register (BulkOperation + file claim) → phase 1: read, validate in chunks, spool the valid
payloads, write result/errors partials, publish progress → decide (policy rejections) → phase 2: apply
the spool in ONE transaction that also marks the operation completed → publish the outbox → archive.

Crash safety: phase 1 writes nothing to the ward tables; phase 2 commits everything or nothing, and the
summary partial is on disk before the commit. After a crash ``recovery`` reprocesses operations that never
committed and finishes the outbox and archive steps of those that did.
"""

from __future__ import annotations

import csv
import errno
import gc
import os
import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import astuple, dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any, BinaryIO, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from processor.adapters import inbox
from processor.adapters.database import operation_records as records
from processor.adapters.database.stores import SqlWardStore
from processor.adapters.database.unit_of_work import UnitOfWork
from processor.adapters.first_lines import DiskFirstLineIndex
from processor.adapters.folders import REPORTS_FOLDER
from processor.adapters.inbox import ClaimedFile
from processor.adapters.outbox import (
    ERRORS_HEADER,
    NOTIFICATIONS_HEADER,
    ExcelCsvWriter,
    OutboxFiles,
    discard_reports,
    publish_outboxes,
    publish_reports,
    write_atomically,
    write_json,
)
from processor.adapters.owners import this_process, token
from processor.core.clock import Clock
from processor.core.csv_reading import MAX_FIELD_CHARS, Record, decode_lines, read_csv
from processor.core.operation_types import OperationStatus, OperationType
from processor.core.problems import Code, FileRejected, RowError
from processor.core.report_request import report_file_name
from processor.logs import get_logger, scrub
from processor.operations.base import (
    MemoryFirstLineIndex,
    Operation,
    OperationRun,
    RowOutcome,
    RunContext,
)
from processor.operations.export_report import ExportPatients
from processor.operations.ports import ConcurrentChange, FirstLineIndex, NotificationLine
from processor.operations.registry import is_available, operation_for, trigger_for
from processor.settings import OperationSettings, Settings

log = get_logger(__name__)
T = TypeVar("T")
RESULT_TAIL = ("line", "outcome", "message")
TRANSIENT_ATTEMPTS = 3
# Files up to this size keep their keys' first lines in memory (see ``_first_line_index``): some
# thousands of keys for real rows, a few megabytes even for rows of a dozen bytes.
SMALL_FILE_BYTES = 256 * 1024
# Allocations between young-generation collections while a file runs (Python's default is 700).
GC_YOUNG_THRESHOLD = 10_000


class Interrupted(Exception):
    """A graceful stop was asked for; the file's transaction was rolled back and it waits, claimed."""


@dataclass
class Pipeline:
    """Everything the pipeline needs; built by ``bootstrap``."""

    settings: Settings
    engine: Engine
    clock: Clock
    host: str = field(default_factory=this_process)  # the owner name of operations: host:pid
    should_stop: Callable[[], bool] = lambda: False
    on_progress: Callable[[int], None] | None = None
    backoff_s: float = 0.5
    # Builds the store operations read and write through, on a connection (bootstrap adds reports).
    store_factory: Callable[[Connection], Any] = SqlWardStore


# The operation types whose files write reports (through the store's ``write_report``). A fresh job of
# another type has no report partial to publish or discard, so it does not list outbox/reports/ for them
# (a directory scan per file, in a folder that only grows). A new report-writing operation belongs here.
REPORT_WRITERS = frozenset({OperationType.EXPORT_REPORT, OperationType.EXPORT_PATIENTS})


@dataclass(frozen=True)
class Job:
    """One registered file: its claimed copy, its operation and where its outputs go.

    ``inherited`` (the default) when the operation may have had another owner before: recovery's jobs.
    A job this process registered a moment ago (``inherited=False``) has no other owner's leftovers to
    look for, so cleaning up after it removes files by name instead of listing folders.
    """

    claimed: ClaimedFile
    operation_id: int
    sha256: str | None
    started_at: datetime
    files: OutboxFiles
    inherited: bool = True

    @property
    def spool(self) -> Path:
        return self.claimed.path.with_name(f".op{self.operation_id}.{self.files.owner_token}.spool")

    @property
    def may_have_reports(self) -> bool:
        """Whether report partials of this operation may exist (see ``REPORT_WRITERS``)."""
        return self.inherited or self.claimed.operation_type in REPORT_WRITERS

    def discard_work(self) -> None:
        """Remove this owner's partial outputs (reports included) and spool."""
        self.files.discard_partials()
        if self.may_have_reports:
            discard_reports(self.files.folder.parent, self.operation_id, self.files.owner_token)
        self.spool.unlink(missing_ok=True)

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


@dataclass(frozen=True)
class Committed:
    """The file's fate is in the database; what is left is publishing the outbox and moving the file."""

    status: OperationStatus
    error_code: str | None
    counts: records.Counts


@dataclass(frozen=True)
class FileOutcome:
    """How one file ended."""

    operation_id: int
    status: OperationStatus
    error_code: str | None
    counts: records.Counts
    summary: Path | None


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
            self._writer = ExcelCsvWriter(self.path, NOTIFICATIONS_HEADER)
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

    @property
    def counts(self) -> records.Counts:
        return records.Counts(self.total, self.total - self.failed, self.failed)

    def wait_until_on_disk(self) -> None:
        """Before the commit: result.csv and errors.csv are on disk (raises what their fsync raised)."""
        for syncing in self.syncing:
            syncing.result()


def chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items."""
    while chunk := list(islice(items, size)):
        yield chunk


def precheck(claimed: ClaimedFile, settings: Settings) -> FileRejected | None:
    """Problems found without reading the file: its type, its name, its size, whether it can be read."""
    if not claimed.is_regular_file:
        return _not_a_regular_file()
    if Path(claimed.original_name).suffix.lower() != ".csv":
        return FileRejected.single(
            Code.NOT_CSV, "only .csv files are accepted; export the sheet as CSV UTF-8"
        )
    if claimed.size > settings.max_file_bytes:
        return FileRejected.single(
            Code.FILE_TOO_LARGE,
            f"the file has {claimed.size} bytes; the limit is {settings.max_file_bytes} (max_file_bytes)",
        )
    return _unreadable(claimed)


def _not_a_regular_file() -> FileRejected:
    return FileRejected.single(
        Code.NOT_A_REGULAR_FILE,
        "not a regular file (a symlink, folder, FIFO, socket or device); it was not opened or followed: "
        "drop the file itself",
    )


def _unreadable(claimed: ClaimedFile) -> FileRejected | None:
    """A rejection when the file cannot be opened (its permissions, say); None when it can."""
    try:
        inbox.open_input(claimed.path).close()
    except inbox.NotRegularFile:
        return _not_a_regular_file()
    except OSError as exc:
        return FileRejected.single(
            Code.FILE_UNREADABLE,
            f"wardbulk cannot read the file ({inbox.error_name(exc)}: {exc.strerror}); "
            "make it readable by the daemon's user and send it again",
        )
    return None


def _sha256_if_readable(claimed: ClaimedFile, max_bytes: int) -> str | None:
    """The file's SHA-256; None when it is refused unread anyway (too large, not a file, unreadable)."""
    if claimed.size > max_bytes:
        return None
    try:
        return inbox.sha256_of(claimed.path)
    except (inbox.NotRegularFile, PermissionError):
        return None  # ``precheck`` says why, in the file's summary


@dataclass(frozen=True)
class Decided:
    """A registered file whose fate is committed: publishing its outbox and moving it are left."""

    job: Job
    committed: Committed


def process_claimed(pipeline: Pipeline, claimed: ClaimedFile) -> FileOutcome:
    """Register a freshly claimed file as a BulkOperation and see it through to the outbox."""
    decided = decide_claimed(pipeline, claimed)
    return publish(pipeline, decided.job, decided.committed)


def decide_claimed(pipeline: Pipeline, claimed: ClaimedFile) -> Decided:
    """``process_claimed`` up to and with the commit; ``publish_all`` finishes it (the daemon publishes
    files in batches). Until then the file waits, bound to its operation, where recovery finds it."""
    sha256 = _sha256_if_readable(claimed, pipeline.settings.max_file_bytes)
    new = records.NewOperation(
        claimed.operation_type, claimed.original_name, sha256, claimed.owner, pipeline.host
    )
    now = pipeline.clock()
    operation_id = records.register(pipeline.engine, new, now)
    bound = inbox.bind_to_operation(claimed, operation_id)
    job = job_for(pipeline, bound, operation_id, sha256, now, inherited=False)
    log.info(
        "file_claimed",
        operation_id=operation_id,
        file=claimed.original_name,
        operation=claimed.operation_type.value,
    )
    return Decided(job, _decide(pipeline, job))


def job_for(
    pipeline: Pipeline,
    claimed: ClaimedFile,
    operation_id: int,
    sha256: str | None,
    started_at: datetime,
    owner: str | None = None,
    inherited: bool = True,
) -> Job:
    """The job of a registered operation (also rebuilt by recovery from the database row).

    ``owner`` names whose temporary files the job uses: this process's, unless recovery publishes what
    a dead owner committed. ``inherited``: see ``Job``.
    """
    files = OutboxFiles.for_operation(
        pipeline.settings.outbox_dir,
        claimed.operation_type,
        claimed.original_name,
        operation_id,
        token(owner or pipeline.host),
    )
    return Job(claimed, operation_id, sha256, started_at, files, inherited)


def run_operation(pipeline: Pipeline, job: Job) -> FileOutcome:
    """Everything after registration; recovery calls it again for a file that never committed.

    Decisions that do not need the rows (not-csv, file-too-large, duplicate-file) are taken again here,
    so that a crash between taking them and recording them cannot let such a file through. Publishing
    comes after the decision is committed and outside its error handling: a failure to publish (a full
    disk, say) must never turn a committed file into a "failed, nothing applied" report.
    """
    return publish(pipeline, job, _decide(pipeline, job))


def _decide(pipeline: Pipeline, job: Job) -> Committed:
    """The file's fate, committed. Whatever goes wrong with this one file ends as its failed summary;
    only a stop, a lost ownership and a fault of the host (``is_host_fault``) propagate, and then the file
    waits, claimed, for recovery."""
    try:
        return _decide_unguarded(pipeline, job)
    except (Interrupted, records.OwnershipLost):
        raise
    except Exception as exc:
        if is_host_fault(exc):
            raise
        log.exception("file_crashed", operation_id=job.operation_id, file=job.claimed.original_name)
        committed = _committed_meanwhile(pipeline, job)
        if committed is not None:
            return committed
        return _fail_crashed(pipeline, job)


def _decide_unguarded(pipeline: Pipeline, job: Job) -> Committed:
    rejection = _start(pipeline, job)
    if rejection is not None:
        return reject_file(pipeline, job, rejection)
    operation = operation_for(job.claimed.operation_type) or trigger_for(job.claimed.operation_type)
    assert operation is not None  # checked by _start
    with Heartbeat(pipeline, job.operation_id), _collector_spares_the_heap():
        return _with_retries(pipeline, job, operation)


CRASHED = "an internal error stopped the file; nothing was applied (the daemon log has the details)"


def _fail_crashed(pipeline: Pipeline, job: Job) -> Committed:
    """Record the file as failed with ``internal-error``: with its fresh outbox files when they can be
    written, else in the database alone (publishing then writes the summary from the record)."""
    crashed = FileRejected.single(Code.INTERNAL_ERROR, CRASHED)
    try:
        return reject_file(pipeline, job, crashed)
    except Exception as exc:
        if is_host_fault(exc):
            raise
        log.exception("file_rejection_failed", operation_id=job.operation_id)
        job.discard_work()
        counts = records.Counts(0, 0, 0)
        code = Code.INTERNAL_ERROR.value
        now = pipeline.clock()
        records.fail(pipeline.engine, job.operation_id, pipeline.host, counts, code, [CRASHED], "", now)
        return Committed(OperationStatus.FAILED, code, counts)


# OS errors that say the host cannot go on now (its disks, its memory, a share), whatever file it holds.
HOST_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EIO,
        errno.ENOMEM,
        errno.ENFILE,
        errno.EMFILE,
        errno.ESTALE,
        errno.ENOTCONN,
        errno.EHOSTDOWN,
        errno.ETIMEDOUT,
    }
)


def is_host_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is the host's trouble (the database unreachable, a disk full or read-only),
    which waiting cures, rather than the file's own, which no retry would."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, OSError) and exc.errno in HOST_ERRNOS


@contextmanager
def _collector_spares_the_heap() -> Iterator[None]:
    """While a file is processed, the garbage collector looks only at objects the file made.

    A file makes millions of short-lived rows; by default each collection of the oldest generation also
    walks every module, class and cached statement loaded before the file (hundreds of thousands of
    objects), which cost a quarter of an import's time. ``gc.freeze`` sets those aside for the file and
    ``gc.unfreeze`` hands them back, so nothing is kept from collection beyond the file.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _start(pipeline: Pipeline, job: Job) -> FileRejected | None:
    """The decisions that need no rows (availability, name, size, duplicate bytes); else the file starts.

    Its bytes are claimed and its operation marked processing (from zero) in one short transaction.
    """
    operation_type = job.claimed.operation_type
    if not is_available(operation_type):
        return FileRejected.single(
            Code.INTERNAL_ERROR, f"operation {operation_type.value} is not available in this version"
        )
    claim = None
    if not job.claimed.is_regular_file:  # not even a trigger may be a link, a FIFO or a folder
        return _not_a_regular_file()
    if trigger_for(operation_type) is None:  # a trigger's content is ignored: any name, size, bytes again
        problem = precheck(job.claimed, pipeline.settings)
        if problem is not None:
            return problem
        if job.sha256 is not None:
            claim = records.BytesToClaim(operation_type, job.sha256)
    holder = records.start_processing(
        pipeline.engine, job.operation_id, pipeline.host, pipeline.clock(), claim
    )
    if holder is not None and holder != job.operation_id:
        return FileRejected.single(
            Code.DUPLICATE_FILE,
            f"the same file was already processed as operation {holder}; nothing was applied",
        )
    return None


def _committed_meanwhile(pipeline: Pipeline, job: Job) -> Committed | None:
    """The committed outcome, when an error came after (or with) a commit that nevertheless landed."""
    row = records.load(pipeline.engine, job.operation_id)
    if row.status not in (OperationStatus.COMPLETED, OperationStatus.FAILED):
        return None
    counts = records.Counts(row.total_records, row.successful_records, row.failed_records)
    return Committed(OperationStatus(row.status), row.error_code, counts)


def _with_retries(pipeline: Pipeline, job: Job, operation: Operation | ExportPatients) -> Committed:
    """Phases 1 and 2, retried with backoff on transient database failures and conflicts."""
    for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
        try:
            return _attempt(pipeline, job, operation)
        except FileRejected as rejected:
            return reject_file(pipeline, job, rejected)
        except Interrupted:
            job.discard_work()
            records.set_pending(pipeline.engine, job.operation_id, pipeline.host)
            log.info("file_interrupted", operation_id=job.operation_id, file=job.claimed.original_name)
            raise
        except (OperationalError, IntegrityError, ConcurrentChange) as exc:
            reason = type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__
            log.warning("database_retry", operation_id=job.operation_id, attempt=attempt, error=reason)
            # A commit whose acknowledgement was lost raises too: then the file is done, not to be redone.
            # (If the database cannot even say, this raises and nothing is discarded: recovery decides.)
            committed = _committed_meanwhile(pipeline, job)
            if committed is not None:
                return committed
            job.discard_work()
            if attempt == TRANSIENT_ATTEMPTS:
                return reject_file(pipeline, job, _database_failure(exc))
            time.sleep(pipeline.backoff_s * 2 ** (attempt - 1))
        except DBAPIError as exc:
            return reject_file(pipeline, job, _database_failure(exc))
    raise AssertionError("unreachable")  # pragma: no cover


class Heartbeat:
    """While a file is processed, tell other hosts every ``interval_s`` that its owner is alive.

    PostgreSQL only: that is where daemons of several hosts share a database. (SQLite serves one host,
    where an owner's liveness is its pid; and its single writer lock would hold the beat back anyway.)
    """

    interval_s = 30.0

    def __init__(self, pipeline: Pipeline, operation_id: int) -> None:
        self._pipeline, self._operation_id = pipeline, operation_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self._pipeline.engine.dialect.name == "postgresql":
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                records.beat(
                    self._pipeline.engine, self._operation_id, self._pipeline.host, self._pipeline.clock()
                )
            except Exception as exc:  # a missed beat is not fatal; the file's own writes will tell
                log.warning("heartbeat_failed", operation_id=self._operation_id, error=type(exc).__name__)


def _database_failure(exc: Exception) -> FileRejected:
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    text = scrub(str(cause)).strip()
    first_line = text.splitlines()[0] if text else ""
    return FileRejected.single(
        Code.DATABASE_ERROR,
        f"the database refused the file ({type(cause).__name__}: {first_line}); nothing was applied",
    )


def _operation_settings(pipeline: Pipeline, job: Job) -> OperationSettings:
    return pipeline.settings.operations.for_type(job.claimed.operation_type)


def _attempt_trigger(pipeline: Pipeline, job: Job, trigger: ExportPatients) -> Committed:
    """A trigger file: write the export it asks for; its content is never read."""
    job.discard_work()
    name = report_file_name(trigger.request, pipeline.clock(), f"op{job.operation_id}")
    with UnitOfWork(pipeline.engine, pipeline.store_factory) as uow:
        rows = uow.store.write_report(trigger.request, name)
        counts = records.Counts(rows, rows, 0)
        result = ExcelCsvWriter(job.files.partial("result.csv"), [*RESULT_TAIL, "report_file"])
        result.write(["", "ok", f"{rows} patients exported", name])
        result.close()
        errors = ExcelCsvWriter(job.files.partial("errors.csv"), ERRORS_HEADER)
        errors.close()
        completed_at = pipeline.clock()
        records.complete(
            uow.connection,
            job.operation_id,
            pipeline.host,
            counts,
            [],
            str(pipeline.settings.outbox_dir / REPORTS_FOLDER / name),
            completed_at,
        )
        summary = _summary(
            job, OperationStatus.COMPLETED, None, counts, completed_at, Validation(ErrorReport(None, 0))
        )
        summary["outputs"]["report"] = f"{REPORTS_FOLDER}/{name}"  # relative to the outbox
        write_json(job.files.partial("summary.json"), summary)
        uow.commit()
    return Committed(OperationStatus.COMPLETED, None, counts)


def _attempt(pipeline: Pipeline, job: Job, operation: Operation | ExportPatients) -> Committed:
    if isinstance(operation, ExportPatients):
        return _attempt_trigger(pipeline, job, operation)
    job.discard_work()
    notify = _operation_settings(pipeline, job).notify
    with _first_line_index(job) as first_lines:
        run = operation.start(RunContext(job.operation_id, pipeline.clock(), notify, first_lines))
        validation = _validate_to_spool(pipeline, job, operation, run)
    policy = _policy_rejection(_operation_settings(pipeline, job), validation)
    if policy is not None:
        validation.wait_until_on_disk()  # the rejection rewrites both files
        return _reject_after_validation(pipeline, job, validation, policy)
    with UnitOfWork(pipeline.engine, pipeline.store_factory) as uow:
        notifications = NotificationsFile(job.files.partial("notifications.csv"))
        for payloads in _read_spool(job.spool):
            _check_stop(pipeline)
            notifications.add(run.apply(payloads, uow.store))
        notifications.close()
        completed_at = pipeline.clock()
        records.complete(
            uow.connection,
            job.operation_id,
            pipeline.host,
            validation.counts,
            validation.report.first_messages,
            str(job.files.final("result.csv")),
            completed_at,
        )
        summary = _summary(job, OperationStatus.COMPLETED, None, validation.counts, completed_at, validation)
        summary["notifications"] = notifications.count
        if notifications.count:
            summary["outputs"]["notifications"] = job.files.final("notifications.csv").name
        write_json(job.files.partial("summary.json"), summary)
        validation.wait_until_on_disk()
        uow.commit()
    return Committed(OperationStatus.COMPLETED, None, validation.counts)


def _first_line_index(job: Job) -> AbstractContextManager[FirstLineIndex]:
    """Where a file's keys remember their first line: on disk, in flat memory at any size; in a
    dictionary for a small file (which then skips setting up a temporary database, a good part of a
    small file's time)."""
    if job.claimed.size <= SMALL_FILE_BYTES:
        return nullcontext(MemoryFirstLineIndex())
    return DiskFirstLineIndex()


def _check_stop(pipeline: Pipeline) -> None:
    if pipeline.should_stop():
        raise Interrupted


def _validate_to_spool(pipeline: Pipeline, job: Job, operation: Operation, run: OperationRun) -> Validation:
    encoding = _operation_settings(pipeline, job).encoding
    with inbox.open_input(job.claimed.path) as raw, job.spool.open("wb") as spool:
        identity = inbox.identity_of(raw)
        csv_file = read_csv(decode_lines(raw, encoding), operation.spec)
        header = [*csv_file.labels, *RESULT_TAIL, *operation.created_columns]
        result = ExcelCsvWriter(job.files.partial("result.csv"), header)
        errors = ExcelCsvWriter(job.files.partial("errors.csv"), ERRORS_HEADER)
        validation = Validation(ErrorReport(errors, pipeline.settings.error_detail_limit))
        validation.width = len(csv_file.labels)
        validation.created_width = len(operation.created_columns)
        validation.unknown_columns = csv_file.unknown_columns
        try:
            for chunk in chunks(csv_file.records, pipeline.settings.chunk_size):
                _validate_chunk(pipeline, job, run, chunk, result, spool, validation)
        finally:
            # Their fsyncs run while the rows are applied, and with the summary's (``_attempt`` waits).
            validation.syncing = [result.close_in_background(), errors.close_in_background()]
        _check_unchanged(raw, identity)
    if validation.total == 0:
        raise FileRejected.single(Code.EMPTY_FILE, "the file has a header but no data rows")
    return validation


def _check_unchanged(raw: BinaryIO, identity: tuple[int, int]) -> None:
    """Refuse a file that someone wrote to (or truncated) while it was read: its rows are not what
    was sent, and its SHA-256 names other bytes."""
    if inbox.identity_of(raw) != identity:
        raise FileRejected.single(
            Code.FILE_CHANGED,
            "the file changed while it was read (its sender was still writing it); nothing was applied: "
            "send it again, written under a .tmp name and renamed when complete",
        )


def _validate_chunk(
    pipeline: Pipeline,
    job: Job,
    run: OperationRun,
    chunk: list[Record],
    result: ExcelCsvWriter,
    spool: IO[bytes],
    validation: Validation,
) -> None:
    _check_stop(pipeline)
    with pipeline.engine.connect() as connection:
        outcomes = run.validate(chunk, pipeline.store_factory(connection))
    for record, outcome in zip(chunk, outcomes, strict=True):
        result.write(_result_row(record, outcome, validation.width, validation.created_width))
        validation.report.add(outcome.errors)
    validation.total += len(chunk)
    validation.failed += sum(1 for outcome in outcomes if not outcome.ok)
    _spool_chunk(spool, [outcome.payload for outcome in outcomes if outcome.ok])
    records.record_progress(
        pipeline.engine, job.operation_id, pipeline.host, validation.total, pipeline.clock()
    )
    if pipeline.on_progress:
        pipeline.on_progress(validation.total)


def _result_row(record: Record, outcome: RowOutcome, width: int, created_width: int) -> list[Any]:
    cells = record.raw[:width] + [""] * (width - len(record.raw))
    if outcome.ok:
        return [*cells, record.line, "ok", "", *outcome.created.values()]
    return [
        *cells,
        record.line,
        "error",
        "; ".join(error.message for error in outcome.errors),
        *[""] * created_width,
    ]


def _spool_chunk(spool: IO[bytes], payloads: list[Any]) -> None:
    """Append a chunk's payloads to the spool.

    Named tuples (the usual payload) are written as plain tuples plus their type: pickle handles plain
    tuples in C, but calls back into Python for every named tuple, which doubled the cost of the spool.
    """
    kind = type(payloads[0]) if payloads else None
    named_tuples = kind is not None and issubclass(kind, tuple) and hasattr(kind, "_make")
    if named_tuples and all(type(payload) is kind for payload in payloads):
        pickle.dump((kind, [tuple(payload) for payload in payloads]), spool)
    else:
        pickle.dump((None, payloads), spool)


def _read_spool(spool: Path) -> Iterator[list[Any]]:
    """The chunks of payloads ``_spool_chunk`` wrote, in order and as they were validated."""
    # This process wrote the spool into its own processing folder moments ago: no foreign pickles.
    with spool.open("rb") as handle:
        while True:
            try:
                kind, payloads = pickle.load(handle)  # noqa: S301
            except EOFError:
                return
            yield payloads if kind is None else list(map(kind._make, payloads))


def _policy_rejection(settings: OperationSettings, validation: Validation) -> FileRejected | None:
    failed, total = validation.failed, validation.total
    if failed and settings.on_row_error == "reject_file":
        return FileRejected.single(
            Code.ROW_ERRORS,
            f"{failed} of {total} rows have errors and on_row_error is reject_file; nothing was applied",
        )
    if total and failed / total > settings.max_error_rate:
        return FileRejected.single(
            Code.TOO_MANY_ERRORS,
            f"{failed} of {total} rows have errors, more than max_error_rate "
            f"{settings.max_error_rate:.0%}; nothing was applied",
        )
    return None


def _reject_after_validation(
    pipeline: Pipeline, job: Job, validation: Validation, rejection: FileRejected
) -> Committed:
    """A policy rejection keeps the row detail: errors.csv gets the file-level line, ok rows become errors."""
    job.spool.unlink(missing_ok=True)
    _mark_rows_not_applied(job.files.partial("result.csv"), validation.width, rejection.message)
    errors = ExcelCsvWriter(job.files.partial("errors.csv"), header=None, append=True)
    for problem in rejection.problems:
        errors.write(["", problem.column, problem.code.value, problem.message, ""])
    errors.close()
    validation.failed = validation.total
    return _finish_failed(pipeline, job, rejection, validation)


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


def reject_file(pipeline: Pipeline, job: Job, rejection: FileRejected) -> Committed:
    """A file-level rejection: fresh outputs with the problem(s), the file moved beside them."""
    job.discard_work()
    ExcelCsvWriter(job.files.partial("result.csv"), RESULT_TAIL).close()
    errors = ExcelCsvWriter(job.files.partial("errors.csv"), ERRORS_HEADER)
    validation = Validation(ErrorReport(errors, pipeline.settings.error_detail_limit))
    validation.report.add(rejection.problems)
    errors.close()
    return _finish_failed(pipeline, job, rejection, validation)


def _finish_failed(
    pipeline: Pipeline, job: Job, rejection: FileRejected, validation: Validation
) -> Committed:
    now = pipeline.clock()
    counts = validation.counts
    write_json(
        job.files.partial("summary.json"),
        _summary(job, OperationStatus.FAILED, rejection, counts, now, validation),
    )
    messages = [rejection.message, *validation.report.first_messages]
    records.fail(
        pipeline.engine,
        job.operation_id,
        pipeline.host,
        counts,
        rejection.code.value,
        messages,
        str(job.files.final("errors.csv")),
        now,
    )
    log.warning(
        "file_rejected",
        operation_id=job.operation_id,
        file=job.claimed.original_name,
        code=rejection.code.value,
        line=rejection.problems[0].line,
    )
    return Committed(OperationStatus.FAILED, rejection.code.value, counts)


def publish(pipeline: Pipeline, job: Job, committed: Committed) -> FileOutcome:
    """Rename the outbox partials into place and move the input to the archive or beside its report.

    Safe to repeat (recovery does, after a crash here): what is already done is skipped.
    """
    return publish_all(pipeline, [Decided(job, committed)])[0]


def publish_all(pipeline: Pipeline, decided: Sequence[Decided]) -> list[FileOutcome]:
    """``publish`` for several files at once, in order: every folder is fsynced once per step for all of
    them (see ``publish_outboxes``), each input moved on only after its summary is durable."""
    for job, committed in ((d.job, d.committed) for d in decided):
        if committed.status == OperationStatus.COMPLETED and job.may_have_reports:
            publish_reports(pipeline.settings.outbox_dir, job.operation_id, job.files.owner_token)
    publish_outboxes([d.job.files for d in decided])
    return [_move_on(pipeline, d.job, d.committed) for d in decided]


def _move_on(pipeline: Pipeline, job: Job, committed: Committed) -> FileOutcome:
    """After its outbox is published: the input to the archive (or beside its report), leftovers gone."""
    status, error_code, counts = committed.status, committed.error_code, committed.counts
    if not job.files.final("summary.json").exists():
        write_atomically(job.files.final("summary.json"), _summary_from_record(pipeline, job))
    if status == OperationStatus.COMPLETED:
        inbox.archive(job.claimed, pipeline.settings.archive_dir, job.operation_id, pipeline.clock())
    else:
        inbox.reject(job.claimed, pipeline.settings.outbox_dir, job.operation_id)
    job.discard_leftovers()
    log.info(
        "file_processed",
        operation_id=job.operation_id,
        file=job.claimed.original_name,
        status=status.value,
        total=counts.total,
        successful=counts.successful,
        failed=counts.failed,
    )
    return FileOutcome(job.operation_id, status, error_code, counts, job.files.final("summary.json"))


def _summary_from_record(pipeline: Pipeline, job: Job) -> dict[str, Any]:
    """The summary as the database knows it, for a committed file whose summary partial was lost."""
    row = records.load(pipeline.engine, job.operation_id)
    counts = records.Counts(row.total_records, row.successful_records, row.failed_records)
    completed = row.completed_at or pipeline.clock()
    report = ErrorReport(writer=None, limit=0)
    rejection = FileRejected.single(Code(row.error_code), row.error_message or "") if row.error_code else None
    summary = _summary(job, OperationStatus(row.status), rejection, counts, completed, Validation(report))
    summary["errors_total"] = None  # unknown: the detail was in the lost partial; errors.csv has it
    return summary


def _summary(
    job: Job,
    status: OperationStatus,
    rejection: FileRejected | None,
    counts: records.Counts,
    completed: datetime,
    validation: Validation,
) -> dict[str, Any]:
    report = validation.report
    return {
        "operation_id": job.operation_id,
        "operation_type": job.claimed.operation_type.value,
        "status": status.value,
        "input_file": job.claimed.original_name,
        "sha256": job.sha256,
        "total_records": counts.total,
        "successful_records": counts.successful,
        "failed_records": counts.failed,
        "started_at": job.started_at.isoformat(),
        "completed_at": completed.isoformat(),
        "duration_s": round((completed - job.started_at).total_seconds(), 3),
        "success_rate": round(100 * counts.successful / counts.total, 2) if counts.total else 0.0,
        "error_code": rejection.code.value if rejection else None,
        "error_message": rejection.message if rejection else None,
        "errors_total": report.total,
        "errors_by_code": dict(report.by_code),
        "errors_truncated": report.truncated,
        "warnings": [f"unknown column {name!r} ignored" for name in validation.unknown_columns],
        "initiated_by": job.claimed.owner,
        "outputs": {kind.split(".")[0]: job.files.final(kind).name for kind in job.files.kinds},
    }

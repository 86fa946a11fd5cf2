"""Outbox files: named by the contract, Excel-safe, and atomic (temporary name, fsync, rename).

For an input ``<stem>.csv`` processed as operation N, in ``outbox/<operation>/``:
``<stem>.opN.result.csv``, ``<stem>.opN.errors.csv``, ``<stem>.opN.summary.json``; and, when admissions or
discharges notified caregivers, ``outbox/notifications/<stem>.opN.notifications.csv``.
While a file is processed they are written as hidden ``.<name>.<owner token>.partial`` files beside
their final names (the token keeps a process that was wrongly taken over from touching its successor's
files); ``publish`` renames them into place, summary last, so a poller that sees the summary sees all.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from processor.adapters.folders import NOTIFICATIONS_FOLDER, REPORTS_FOLDER
from processor.core.excel_safe import neutralised_row, neutralised_rows
from processor.core.names import outbox_stem
from processor.core.operation_kinds import OperationType

ERRORS_HEADER = ("line", "column", "code", "message", "value")
NOTIFICATIONS_HEADER = (
    "patient_id",
    "caregiver_name",
    "caregiver_email",
    "caregiver_phone",
    "kind",
    "ward",
    "bed",
    "time",
    "status",
)
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class OutboxFiles:
    """The three output files of one operation."""

    folder: Path
    stem: str
    operation_id: int
    owner_token: str

    # Published in this order: the summary last, so that whoever sees it can read the rest.
    ALL_KINDS = ("result.csv", "errors.csv", "rejected.csv", "notifications.csv", "summary.json")

    @classmethod
    def for_operation(
        cls,
        outbox_dir: Path,
        operation_type: OperationType,
        input_name: str,
        operation_id: int,
        owner_token: str,
    ) -> OutboxFiles:
        """``input_name`` is the input's display name; the files' stem is ``outbox_stem`` of it."""
        return cls(outbox_dir / operation_type.value, outbox_stem(input_name), operation_id, owner_token)

    def _folder_of(self, kind: str) -> Path:
        return self.folder.parent / NOTIFICATIONS_FOLDER if kind == "notifications.csv" else self.folder

    def final(self, kind: str) -> Path:
        """``kind`` is one of ``ALL_KINDS``."""
        return self._paths[kind][0]

    def partial(self, kind: str) -> Path:
        return self._paths[kind][1]

    @cached_property
    def _paths(self) -> dict[str, tuple[Path, Path]]:
        """(final, partial) by kind, made once: the steps of one file ask for them dozens of times."""
        paths = {}
        for kind in self.ALL_KINDS:
            name = f"{self.stem}.op{self.operation_id}.{kind}"
            folder = self._folder_of(kind)
            paths[kind] = (folder / name, folder / f".{name}.{self.owner_token}{PARTIAL_SUFFIX}")
        return paths

    @property
    def kinds(self) -> tuple[str, str, str]:
        """The three files every operation has."""
        return ("result.csv", "errors.csv", "summary.json")

    def existing(self, kinds: tuple[str, ...] = ALL_KINDS) -> list[Path]:
        """The published files of these kinds that exist now."""
        return [self.final(kind) for kind in kinds if self.final(kind).is_file()]

    def discard_partials(self) -> None:
        """Remove this owner's partials."""
        for kind in self.ALL_KINDS:
            self.partial(kind).unlink(missing_ok=True)

    def discard_everyones_partials(self) -> None:
        """Remove the partials of every owner (the others are dead: their work was taken over)."""
        for kind in self.ALL_KINDS:
            pattern = f".{glob.escape(self.final(kind).name)}.*{PARTIAL_SUFFIX}"  # a stem may hold [ or *
            for partial in self._folder_of(kind).glob(pattern):
                partial.unlink(missing_ok=True)

    def publish(self) -> list[Path]:
        """Rename this owner's partials into place, summary last; returns the final paths.

        A partial that vanished meanwhile was published by another process finishing the same step.
        See ``publish_outboxes`` for durability.
        """
        return publish_outboxes([self])[0]

    def rename_partial(self, kind: str) -> Path | None:
        """Rename the partial of ``kind`` into place; None when there is none (never written, or gone)."""
        try:
            os.replace(self.partial(kind), self.final(kind))
        except FileNotFoundError:
            return None
        return self.final(kind)


def publish_outboxes(outboxes: Sequence[OutboxFiles]) -> list[list[Path]]:
    """Publish several operations' partials: the published paths of each, summary last.

    Every file but the summaries is renamed first and its folder fsynced (once, whatever the number of
    files), then the summaries, and their folders fsynced once more: even after a power cut no summary
    appears without the files it names, and when this returns every rename is durable. (Per folder and
    step rather than per file: the order is what matters, and a directory fsync covers all its renames.)
    """
    *others, last = OutboxFiles.ALL_KINDS
    published = [[p for p in map(files.rename_partial, others) if p is not None] for files in outboxes]
    _fsync_folders_of([path for paths in published for path in paths])
    summaries = [files.rename_partial(last) for files in outboxes]
    _fsync_folders_of([summary for summary in summaries if summary is not None])
    for paths, summary in zip(published, summaries, strict=True):
        if summary is not None:
            paths.append(summary)
    return published


def _fsync_folders_of(paths: list[Path]) -> None:
    for folder in dict.fromkeys(path.parent for path in paths):
        fsync_directory(folder)


def fsync_directory(folder: Path) -> None:
    """Make renames in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ExcelCsvWriter:
    """Streams rows to a CSV file that Excel opens safely: UTF-8 with BOM, formula cells neutralised.

    ``for_machines``: a file that other systems read (notifications.csv for the messaging system) keeps
    its values as they are, without the apostrophe that neutralises a formula for Excel.
    """

    def __init__(
        self, path: Path, header: Sequence[str] | None, append: bool = False, for_machines: bool = False
    ) -> None:
        """Create ``path`` with ``header``, or with ``append`` add rows to a file this class wrote."""
        self.path = path
        self._cells_of = list if for_machines else neutralised_row
        self._for_machines = for_machines
        # On append the BOM is already at the start of the file; plain utf-8 must not write another.
        encoding, mode = ("utf-8", "a") if append else ("utf-8-sig", "w")
        self._handle: IO[str] = open_in_folder(path, mode, encoding=encoding, newline="")
        self._writer = csv.writer(self._handle, lineterminator="\r\n")
        if header is not None:
            self.write(header)

    def write(self, cells: Iterable[Any]) -> None:
        self._writer.writerow(self._cells_of(cells))

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write many rows at once (a chunk's result rows): one call into the csv module for all, and
        the formula check a column at a time (``neutralised_rows``)."""
        self._writer.writerows(rows if self._for_machines else neutralised_rows(rows))

    def write_neutralised(self, cells: Iterable[Any]) -> None:
        """Write cells that were already neutralised (copied from a file this class wrote)."""
        self._writer.writerow(cells)

    def close(self) -> None:
        """Flush and fsync: after ``close`` the bytes are on disk."""
        if self._handle.closed:
            return
        self._handle.flush()
        _sync_and_close(self._handle)

    def close_in_background(self) -> Future[None]:
        """Flush now; fsync and close on a background thread. The bytes are on disk once the future is
        done (its ``result()`` raises what the fsync raised); the writer must not be used meanwhile.

        The caller goes on with work that does not need the bytes on disk, and fsyncs issued together
        share the file system's journal commit: a file's partials reach the disk for the price of one.
        """
        if self._handle.closed:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        self._handle.flush()
        return _FSYNCS.submit(_sync_and_close, self._handle)


# A few threads that only fsync and close: they hold the GIL for microseconds around each call.
_FSYNCS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="fsync")


def _sync_and_close(handle: IO[str]) -> None:
    try:
        os.fsync(handle.fileno())
    finally:
        handle.close()


def open_in_folder(path: Path, mode: str, encoding: str, newline: str | None = None) -> IO[str]:
    """Open ``path`` to write, creating its folder only when it is missing (not a mkdir per file)."""
    try:
        return path.open(mode, encoding=encoding, newline=newline)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open(mode, encoding=encoding, newline=newline)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` (a partial or temporary name) and fsync it."""
    with open_in_folder(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def removed_on_failure(temporary: Path) -> Iterator[Path]:
    """Yields ``temporary``; if the block fails (a full disk, say), it is removed before the error goes
    on: half a temporary file must not be left behind."""
    try:
        yield temporary
    except BaseException:
        with suppress(OSError):
            temporary.unlink()
        raise


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write JSON under a temporary name in the same folder, fsync, rename into place."""
    with removed_on_failure(path.with_name(f".{path.name}{PARTIAL_SUFFIX}")) as temporary:
        write_json(temporary, data)
        os.replace(temporary, path)
    fsync_directory(path.parent)


# A report file of an operation: ``report_file_name`` with an ``op<N>`` (and ``-line<L>``) tag.
_STAMPED = re.compile(r"^(?P<base>.+)-\d{8}T\d{6}Z-op(?P<operation>\d+)(?:-line\d+)?\.csv$")


def report_operation_id(name: str) -> int | None:
    """The operation that wrote the report file ``name`` (None for a ``-latest`` copy or a scheduled
    report, whose names carry no operation)."""
    match = _STAMPED.match(name)
    return int(match.group("operation")) if match else None


def report_partial(outbox_dir: Path, name: str, owner_token: str) -> Path:
    """Where a report of a file's transaction is written until the transaction commits."""
    return outbox_dir / REPORTS_FOLDER / f".{name}.{owner_token}{PARTIAL_SUFFIX}"


def _report_partials(outbox_dir: Path, operation_id: int, owner_token: str) -> list[Path]:
    folder = outbox_dir / REPORTS_FOLDER
    return [
        *folder.glob(f".*-op{operation_id}.csv.{owner_token}{PARTIAL_SUFFIX}"),
        *folder.glob(f".*-op{operation_id}-line*.csv.{owner_token}{PARTIAL_SUFFIX}"),
    ]


def publish_reports(outbox_dir: Path, operation_id: int, owner_token: str) -> list[Path]:
    """After the commit: rename the operation's report partials into place and refresh their latest copies."""
    published = []
    for partial in sorted(_report_partials(outbox_dir, operation_id, owner_token)):
        final = partial.with_name(partial.name[1:].removesuffix(f".{owner_token}{PARTIAL_SUFFIX}"))
        os.replace(partial, final)
        refresh_latest(final)
        published.append(final)
    return published


ANY_OWNER = "*"


def discard_reports(outbox_dir: Path, operation_id: int, owner_token: str = ANY_OWNER) -> None:
    """Remove an operation's unpublished reports (of one owner, or of all with ``*``)."""
    for partial in _report_partials(outbox_dir, operation_id, owner_token):
        partial.unlink(missing_ok=True)


def refresh_latest(report: Path) -> Path | None:
    """Make ``<base>-latest.csv`` a copy of ``report`` (atomically; a temporary name per writer)."""
    match = _STAMPED.match(report.name)
    if match is None:
        return None
    latest = report.with_name(f"{match.group('base')}-latest.csv")
    with removed_on_failure(
        latest.with_name(f".{latest.name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")
    ) as partial:
        shutil.copyfile(report, partial)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, latest)
    fsync_directory(latest.parent)
    return latest

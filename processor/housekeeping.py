"""Housekeeping: what wardbulk deletes when it has kept it long enough, for the daemon's daily job and
for ``wardbulk purge`` (from cron, where no daemon runs).

Processed originals leave ``archive/`` after ``archive_retention_days``; the outbox files that carry
patient data leave after ``outbox_retention_days`` (``adapters.retention`` says which). BulkOperation
rows stay (they hold no cell values): each operation whose files went is marked, so that the history says
"purged" (the dashboard and ``ops show`` list only files that exist, so a mark that fails to be written
leaves no dangling link). An entry that cannot be deleted is logged and the rest go on; its operation is
not marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from processor.adapters import retention
from processor.adapters.database import operation_records as records
from processor.adapters.folders import REJECTED_FOLDER, REPORTS_FOLDER, UNKNOWN_FOLDER
from processor.adapters.inbox import moved_name
from processor.adapters.outbox import OutboxFiles, report_operation_id
from processor.core.names import display_name
from processor.core.operation_kinds import OperationType
from processor.logs import get_logger
from processor.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class Housekept:
    """What one purge deleted (or, with ``dry_run``, would delete), and what it could not."""

    archive: list[Path]
    outbox: list[Path]
    failed: list[Path]
    operations_marked: int  # operations newly marked as having purged outputs
    dry_run: bool


def purge_expired(settings: Settings, engine: Engine, now: datetime, dry_run: bool = False) -> Housekept:
    """Delete the archive's and the outbox's expired files; mark the operations whose outputs went."""
    moment = now.timestamp()
    archive = retention.expired_archive(settings.archive_dir, settings.archive_retention_days, moment)
    outbox = retention.purge_outbox(settings.outbox_dir, settings.outbox_retention_days, moment, dry_run)
    if dry_run:
        return Housekept(archive, outbox.removed, [], 0, dry_run=True)
    archive, archive_failed = retention.remove_all(archive)
    retention.remove_empty_date_folders(settings.archive_dir)
    failed = [*archive_failed, *outbox.failed]
    for path, error in failed:
        log.warning("purge_failed", file=display_name(path.name), folder=path.parent.name, error=error)
    owners = owners_of(engine, settings.outbox_dir, outbox.removed)
    marked = records.mark_outputs_purged(engine, owners, now)
    log.info("archive_purged", files_removed=len(archive), retention_days=settings.archive_retention_days)
    log.info("outbox_purged", files_removed=len(outbox.removed), operations_marked=marked)
    return Housekept(archive, outbox.removed, [path for path, _ in failed], marked, dry_run=False)


def owners_of(engine: Engine, outbox_dir: Path, removed: list[Path]) -> set[int]:
    """The operations these outbox files belonged to: a report by the tag wardbulk gave it, any other
    file by comparing its name with the names its candidate operations' records give (``op<N>`` alone
    is ambiguous: a sender's name may hold one). Notes about strays belong to no operation."""
    candidates = {tag for path in removed for tag in retention.operation_tags(path.name)}
    recorded = records.recorded_inputs(engine, candidates)
    owners = set()
    for path in removed:
        owner = _owner(outbox_dir, path, recorded)
        if owner is not None:
            owners.add(owner)
    return owners


def _owner(outbox_dir: Path, path: Path, recorded: dict[int, tuple[OperationType, str]]) -> int | None:
    folder = path.parent.name
    if folder == UNKNOWN_FOLDER:
        return None
    if folder == REPORTS_FOLDER:
        return report_operation_id(path.name)
    for tag in retention.operation_tags(path.name):
        if tag in recorded and path.name in _names_of(outbox_dir, tag, *recorded[tag], folder):
            return tag
    return None


def _names_of(
    outbox_dir: Path, operation_id: int, kind: OperationType, input_name: str, folder: str
) -> set[str]:
    """The names an operation's files have in ``folder``: its rejected original, or its outputs."""
    if folder == REJECTED_FOLDER:
        return {moved_name(input_name, operation_id)}
    files = OutboxFiles.for_operation(outbox_dir, kind, input_name, operation_id, "")
    return {files.final(output).name for output in OutboxFiles.ALL_KINDS}

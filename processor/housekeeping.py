"""Housekeeping: what wardbulk deletes when it has kept it long enough, for the daemon's daily job and
for ``wardbulk purge`` (from cron, where no daemon runs).

Processed originals leave ``archive/`` after ``archive_retention_days``; the outbox files that carry
patient data leave after ``outbox_retention_days`` (``adapters.retention`` says which). BulkOperation
rows stay (they hold no cell values): the operations whose files went are marked first, then the files
are deleted, so the history never links to files without saying they were purged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from processor.adapters import retention
from processor.adapters.database import operation_records as records
from processor.logs import get_logger
from processor.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class Housekept:
    """What one purge deleted (or, with ``dry_run``, would delete)."""

    archive: list[Path]
    outbox: list[Path]
    operations_marked: int  # operations newly marked as having purged outputs
    dry_run: bool


def purge_expired(settings: Settings, engine: Engine, now: datetime, dry_run: bool = False) -> Housekept:
    """Delete the archive's and the outbox's expired files; mark the operations whose outputs went."""
    moment = now.timestamp()
    archive = retention.expired_archive(settings.archive_dir, settings.archive_retention_days, moment)
    outbox = retention.purge_outbox(settings.outbox_dir, settings.outbox_retention_days, moment, dry_run=True)
    if dry_run:
        return Housekept(archive, outbox.removed, 0, dry_run=True)
    marked = records.mark_outputs_purged(engine, outbox.operation_ids, now)
    retention.remove_all(archive)
    retention.remove_all(outbox.removed)
    log.info("archive_purged", files_removed=len(archive), retention_days=settings.archive_retention_days)
    log.info(
        "outbox_purged",
        files_removed=len(outbox.removed),
        operations_marked=marked,
        retention_days=settings.outbox_retention_days,
    )
    return Housekept(archive, outbox.removed, marked, dry_run=False)

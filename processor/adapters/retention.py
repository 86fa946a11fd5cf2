"""Retention: what wardbulk keeps for a while and then deletes.

- ``archive/``: processed originals, kept ``archive_retention_days``.
- the outbox: every file that carries patient data, kept ``outbox_retention_days``: each operation's
  result, errors, summary and notifications, the rejected originals beside them, and the report files.
  The ``<type>-latest.csv`` copies (a stable address for the newest report, replaced by the next) and
  ``dashboard.html`` (rewritten all the time) are kept, and so are hidden files (another process's
  partials, which it publishes or discards).

Age is the entry's own modification time (``lstat``: a rejected symlink is judged by itself, never
followed). Deleting is idempotent: an entry already gone is skipped, so several hosts may purge one
outbox. Each purge says which operations lost files (``operation_ids``, read from the ``op<N>`` in the
names), so that the history can mark their outputs as purged instead of linking to nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from processor.adapters.folders import NOTIFICATIONS_FOLDER, REJECTED_FOLDER, REPORTS_FOLDER, UNKNOWN_FOLDER
from processor.core.operation_kinds import OPERATION_NAMES

LATEST_SUFFIX = "-latest.csv"
# The operation an outbox name belongs to: the last ``op<N>`` between separators (a sender's own name
# may hold another: ``x.op1.csv`` processed as operation 7 gives ``x.op1.op7.summary.json``).
_OPERATION_TAG = re.compile(r"(?:^|[.-])op(\d+)(?=[.-]|$)")


@dataclass
class Purge:
    """What a purge deleted (or, for a dry run, would delete)."""

    removed: list[Path] = field(default_factory=list)
    operation_ids: set[int] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.removed)


def purge_archive(archive_dir: Path, retention_days: int, now: float | None = None) -> int:
    """Delete archived files older than ``retention_days``; returns how many were deleted."""
    expired = expired_archive(archive_dir, retention_days, now)
    remove_all(expired)
    for folder in archive_dir.glob("*/*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return len(expired)


def expired_archive(archive_dir: Path, retention_days: int, now: float | None = None) -> list[Path]:
    """The archived files older than ``retention_days``."""
    cutoff = _cutoff(retention_days, now)
    return [path for path in archive_dir.glob("*/*/*") if path.is_file() and path.stat().st_mtime < cutoff]


def remove_all(entries: list[Path]) -> None:
    """Remove these entries (files, symlinks, refused folders); one already gone is skipped."""
    for entry in entries:
        try:
            _remove(entry)
        except FileNotFoundError:
            continue  # another host purged it first


def purge_outbox(
    outbox_dir: Path, retention_days: int, now: float | None = None, dry_run: bool = False
) -> Purge:
    """Delete the outbox files older than ``retention_days`` (see the module's docstring for which);
    with ``dry_run``, only say what would go."""
    cutoff = _cutoff(retention_days, now)
    purge = Purge()
    for entry in _purgeable(outbox_dir):
        try:
            if entry.lstat().st_mtime >= cutoff:
                continue
        except FileNotFoundError:
            continue  # another host purged it first
        purge.removed.append(entry)
        operation_id = operation_id_of(entry.name)
        if operation_id is not None:
            purge.operation_ids.add(operation_id)
    if not dry_run:
        remove_all(purge.removed)
    return purge


def operation_id_of(name: str) -> int | None:
    """The operation an outbox file belongs to, from the ``op<N>`` in its name (None for none)."""
    found = _OPERATION_TAG.findall(name)
    return int(found[-1]) if found else None


def _cutoff(retention_days: int, now: float | None) -> float:
    return (now if now is not None else time.time()) - timedelta(days=retention_days).total_seconds()


def _purgeable(outbox_dir: Path) -> Iterator[Path]:
    """Every entry retention may delete: the operations' folders and their ``rejected/``, the
    notifications and the reports (their ``-latest`` copies aside)."""
    folders = [outbox_dir / name for name in OPERATION_NAMES]
    folders += [folder / REJECTED_FOLDER for folder in folders]
    folders += [outbox_dir / NOTIFICATIONS_FOLDER, outbox_dir / REPORTS_FOLDER, outbox_dir / UNKNOWN_FOLDER]
    for folder in folders:
        yield from (entry for entry in _entries(folder) if _is_purgeable(folder, entry))


def _entries(folder: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(folder)]
    except FileNotFoundError:
        return []


def _is_purgeable(folder: Path, entry: Path) -> bool:
    if entry.name.startswith(".") or entry.name.endswith(LATEST_SUFFIX):
        return False
    if folder.name == REJECTED_FOLDER:
        return True  # a folder in rejected/ is a refused original like any other entry there
    try:
        return not stat.S_ISDIR(entry.lstat().st_mode)  # elsewhere a folder is ours (rejected/ itself)
    except FileNotFoundError:
        return False


def _remove(entry: Path) -> None:
    """Remove a file, a symlink (never what it names) or a refused folder with what it holds."""
    if stat.S_ISDIR(entry.lstat().st_mode):
        shutil.rmtree(entry)
    else:
        entry.unlink()

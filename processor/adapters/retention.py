"""Retention: what wardbulk keeps for a while and then deletes.

- ``archive/``: processed originals, kept ``archive_retention_days``.
- the outbox: every file that carries patient data, kept ``outbox_retention_days``: each operation's
  result, errors, summary and notifications, the rejected originals beside them, and the report files.
  The ``<type>-latest.csv`` copies (a stable address for the newest report, replaced by the next) and
  ``dashboard.html`` (rewritten all the time) are kept, and so are hidden files (another process's
  partials, which it publishes or discards).

Age is the entry's own modification time (``lstat``: a rejected symlink is judged by itself, never
followed; archiving and rejecting set it, so a sender's old timestamp does not count). Deleting is
idempotent: an entry already gone is skipped, so several hosts may purge one outbox; an entry that cannot
be deleted (permissions) is reported and the others go on. ``operation_tags`` gives the operations a
name may belong to; ``housekeeping`` decides which one it does, from the operations' records.
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
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (entry, the error's name)
    operation_ids: set[int] = field(default_factory=set)  # every op<N> in the removed names


def purge_archive(archive_dir: Path, retention_days: int, now: float | None = None) -> int:
    """Delete archived files older than ``retention_days``; returns how many were deleted."""
    removed, _ = remove_all(expired_archive(archive_dir, retention_days, now))
    remove_empty_date_folders(archive_dir)
    return len(removed)


def remove_empty_date_folders(archive_dir: Path) -> None:
    """``archive/<op>/<date>/`` folders left empty by a purge."""
    for folder in archive_dir.glob("*/*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def expired_archive(archive_dir: Path, retention_days: int, now: float | None = None) -> list[Path]:
    """The archived files older than ``retention_days``."""
    cutoff = _cutoff(retention_days, now)
    return [path for path in archive_dir.glob("*/*/*") if path.is_file() and path.stat().st_mtime < cutoff]


def remove_all(entries: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Remove these entries (files, symlinks, refused folders): those removed (or already gone: another
    host purged them first), and those that could not be, with the error's name."""
    removed, failed = [], []
    for entry in entries:
        try:
            _remove(entry)
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append((entry, type(exc).__name__))
            continue
        removed.append(entry)
    return removed, failed


def purge_outbox(
    outbox_dir: Path, retention_days: int, now: float | None = None, dry_run: bool = False
) -> Purge:
    """Delete the outbox files older than ``retention_days`` (see the module's docstring for which);
    with ``dry_run``, only say what would go."""
    expired = expired_outbox(outbox_dir, retention_days, now)
    removed, failed = (expired, []) if dry_run else remove_all(expired)
    tags = {tag for entry in removed for tag in operation_tags(entry.name)}
    return Purge(removed, failed, tags)


def expired_outbox(outbox_dir: Path, retention_days: int, now: float | None = None) -> list[Path]:
    """The outbox entries older than ``retention_days`` that retention may delete."""
    cutoff = _cutoff(retention_days, now)
    expired = []
    for entry in _purgeable(outbox_dir):
        try:
            if entry.lstat().st_mtime < cutoff:
                expired.append(entry)
        except FileNotFoundError:
            continue  # another host purged it first
    return expired


def operation_tags(name: str) -> list[int]:
    """Every ``op<N>`` between separators in an outbox name, last first: the operations it may belong
    to (a sender's own name may hold one too: ``x.op1.csv`` processed as 7 gives ``x.op1.op7.summary.json``,
    and ``data.op3`` rejected as 7 gives ``data.op7.op3``)."""
    return [int(tag) for tag in reversed(_OPERATION_TAG.findall(name))]


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

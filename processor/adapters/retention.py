"""Retention: what wardbulk keeps for a while and then deletes (processed originals in the archive)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path


def purge_archive(archive_dir: Path, retention_days: int, now: float | None = None) -> int:
    """Delete archived files older than ``retention_days``; returns how many were deleted."""
    cutoff = (now if now is not None else time.time()) - timedelta(days=retention_days).total_seconds()
    removed = 0
    for path in archive_dir.glob("*/*/*"):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink()
            removed += 1
    for folder in archive_dir.glob("*/*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed

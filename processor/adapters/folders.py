"""The folder layout on the shared drive: one inbox and one outbox folder per operation type."""

from __future__ import annotations

from pathlib import Path

from processor.core.operation_kinds import OPERATION_KINDS

REPORTS_FOLDER = "reports"
NOTIFICATIONS_FOLDER = "notifications"
UNKNOWN_FOLDER = "unknown"  # outbox/unknown/: notes about inbox entries outside the operation folders
REJECTED_FOLDER = "rejected"  # outbox/<op>/rejected/: refused inputs beside their error reports
VALIDATE_FOLDER = "validate"  # inbox/<op>/validate/: files for a dry run (checked, never applied)


def required_folders(inbox_dir: Path, outbox_dir: Path, archive_dir: Path) -> list[Path]:
    """Every folder wardbulk reads or writes, in creation order."""
    folders = [inbox_dir, outbox_dir, archive_dir]
    for kind in OPERATION_KINDS:
        folders += [inbox_dir / kind.name, outbox_dir / kind.name]
        if not kind.is_trigger:  # a trigger's content is never read: nothing to try
            folders.append(inbox_dir / kind.name / VALIDATE_FOLDER)
    folders += [outbox_dir / REPORTS_FOLDER, outbox_dir / NOTIFICATIONS_FOLDER]
    return folders


def create_folders(folders: list[Path]) -> list[Path]:
    """Create missing folders; returns the ones that were created (none on a second run)."""
    created = [folder for folder in folders if not folder.is_dir()]
    for folder in created:
        folder.mkdir(parents=True, exist_ok=True)
    return created

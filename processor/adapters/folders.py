"""The folder layout on the shared drive: one inbox and one outbox folder per operation type."""

from __future__ import annotations

from pathlib import Path

from processor.core.operation_types import OperationType

REPORTS_FOLDER = "reports"
NOTIFICATIONS_FOLDER = "notifications"


def required_folders(inbox_dir: Path, outbox_dir: Path, archive_dir: Path) -> list[Path]:
    """Every folder wardbulk reads or writes, in creation order."""
    folders = [inbox_dir, outbox_dir, archive_dir]
    for operation_type in OperationType:
        folders += [inbox_dir / operation_type.value, outbox_dir / operation_type.value]
    folders += [outbox_dir / REPORTS_FOLDER, outbox_dir / NOTIFICATIONS_FOLDER]
    return folders


def create_folders(folders: list[Path]) -> list[Path]:
    """Create missing folders; returns the ones that were created (none on a second run)."""
    created = [folder for folder in folders if not folder.is_dir()]
    for folder in created:
        folder.mkdir(parents=True, exist_ok=True)
    return created

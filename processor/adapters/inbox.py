"""The inbox on the shared drive: which files count, when they are complete, claiming, moving aside.

Layout: ``inbox/<operation>/`` holds only pending files. A claimed file is renamed (atomically, same
filesystem) into ``inbox/.processing/<operation>/``; when done it moves to
``archive/<operation>/<date>/`` or, when rejected, to ``outbox/<operation>/rejected/``.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from processor.core.operation_types import OperationType

PROCESSING_FOLDER = ".processing"
DONE_SUFFIX = ".done"
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", DONE_SUFFIX)
HASH_BLOCK = 1024 * 1024


def is_ignored(name: str) -> bool:
    """Dotfiles, temporary and partial files, Excel's ``~$`` lock files and ``.done`` markers."""
    return name.startswith((".", "~$")) or name.lower().endswith(IGNORED_SUFFIXES)


def done_marker(path: Path) -> Path:
    """The marker ``<name>.done`` that says ``path`` is complete."""
    return path.with_name(path.name + DONE_SUFFIX)


@dataclass(frozen=True)
class InboxFile:
    """A candidate file in ``inbox/<operation>/``."""

    path: Path
    operation_type: OperationType


# Files with the same modification time (file systems keep it coarsely) are taken in the order of a
# hospital's day: the bed registry, then patients, then their admissions, then discharges, then exports.
TIE_ORDER = (
    OperationType.SYNC_BEDS,
    OperationType.IMPORT_PATIENTS,
    OperationType.BULK_ASSIGNMENT,
    OperationType.BULK_DISCHARGE,
    OperationType.EXPORT_REPORT,
    OperationType.EXPORT_PATIENTS,
)


def scan(inbox_dir: Path, operation_types: list[OperationType]) -> Iterator[InboxFile]:
    """Every candidate file present now, oldest modification first (the arrival order at start).

    Equal modification times are ordered by ``TIE_ORDER``, then by name.
    """
    found = []
    for operation_type in operation_types:
        folder = inbox_dir / operation_type.value
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False) and not is_ignored(entry.name):
                try:
                    modified = entry.stat().st_mtime_ns
                except FileNotFoundError:
                    continue  # another daemon claimed it between listing and stat
                rank = TIE_ORDER.index(operation_type)
                found.append((modified, rank, entry.name, InboxFile(Path(entry.path), operation_type)))
    for *_, inbox_file in sorted(found, key=lambda item: item[:3]):
        yield inbox_file


def operation_type_of(inbox_dir: Path, path: Path) -> OperationType | None:
    """The operation whose inbox folder directly holds ``path``, if any."""
    if path.parent.parent != inbox_dir:
        return None
    try:
        return OperationType(path.parent.name)
    except ValueError:
        return None


@dataclass(frozen=True)
class ClaimedFile:
    """A file this process owns: moved out of the inbox into the processing area."""

    path: Path
    original_name: str
    operation_type: OperationType
    owner: str

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def owner_name(path: Path) -> str:
    """The OS user owning ``path`` (``uid-N`` when the user is unknown on this host)."""
    return _user_name(path.stat().st_uid)


@lru_cache(maxsize=256)
def _user_name(uid: int) -> str:
    """Cached: the lookup reads the user database (/etc/passwd, or a directory service) every time."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"


def processing_folder(inbox_dir: Path, operation_type: OperationType) -> Path:
    return inbox_dir / PROCESSING_FOLDER / operation_type.value


def claim_name(owner: str, name: str) -> str:
    """``new~<owner>~<random>__<name>`` (the owner's colons as ``~``, which SMB shares accept)."""
    return f"new~{owner.replace(':', '~')}~{uuid.uuid4().hex[:12]}__{name}"


def _claimer_of(path: Path) -> str:
    return ":".join(path.name.split("__", 1)[0].split("~")[1:-1])


def claim(inbox_dir: Path, candidate: InboxFile, claimer: str) -> ClaimedFile | None:
    """Rename the file into the processing area. None if another process took (or removed) it first."""
    target_folder = processing_folder(inbox_dir, candidate.operation_type)
    target = target_folder / claim_name(claimer, candidate.path.name)
    try:
        owner = owner_name(candidate.path)
        _move_into_folder(os.rename, candidate.path, target)
    except FileNotFoundError:
        return None
    done_marker(candidate.path).unlink(missing_ok=True)
    return ClaimedFile(target, candidate.path.name, candidate.operation_type, owner)


def copy_in(
    inbox_dir: Path, source: Path, operation_type: OperationType, owner: str, claimer: str
) -> ClaimedFile:
    """Claim a copy of a file from outside the inbox (``wardbulk process``); the original stays."""
    target_folder = processing_folder(inbox_dir, operation_type)
    target_folder.mkdir(parents=True, exist_ok=True)
    target = target_folder / claim_name(claimer, source.name)
    shutil.copyfile(source, target)
    return ClaimedFile(target, source.name, operation_type, owner)


def bind_to_operation(claimed: ClaimedFile, operation_id: int) -> ClaimedFile:
    """Rename the claimed file to ``op<N>__<name>`` so that recovery finds it by operation."""
    target = claimed.path.with_name(f"op{operation_id}__{claimed.original_name}")
    os.rename(claimed.path, target)
    return ClaimedFile(target, claimed.original_name, claimed.operation_type, claimed.owner)


def claimed_file_of(inbox_dir: Path, operation_type: OperationType, operation_id: int) -> ClaimedFile | None:
    """The claimed file of an operation, found in the processing area after a restart."""
    for path in processing_folder(inbox_dir, operation_type).glob(f"op{operation_id}__*"):
        return ClaimedFile(path, path.name.split("__", 1)[1], operation_type, owner_name(path))
    return None


@dataclass(frozen=True)
class UnboundClaim:
    """A file claimed but not yet bound to an operation: its claimer may have died in between."""

    path: Path
    operation_type: OperationType
    claimer: str
    claimed_at: datetime

    @property
    def original_name(self) -> str:
        return self.path.name.split("__", 1)[1]


def unbound_claims(inbox_dir: Path) -> Iterator[UnboundClaim]:
    """Every claimed file not yet bound to an operation, with its claimer (``host:pid``)."""
    for operation_type in OperationType:
        for path in processing_folder(inbox_dir, operation_type).glob("new~*__*"):
            try:
                claimed_at = datetime.fromtimestamp(path.stat().st_ctime, UTC)  # the claiming rename
            except FileNotFoundError:
                continue
            yield UnboundClaim(path, operation_type, _claimer_of(path), claimed_at)


def return_to_inbox(inbox_dir: Path, claim: UnboundClaim, with_done_marker: bool) -> Path:
    """Put an abandoned claim back where it was dropped, never over a newer file of the same name.

    ``with_done_marker`` recreates the ``.done`` marker that claiming removed, for operations that wait
    for one (without it the file would never be taken again).
    """
    target = inbox_dir / claim.operation_type.value / claim.original_name
    try:
        os.link(claim.path, target)
    except FileExistsError:
        name = Path(claim.original_name)
        target = target.with_name(f"{name.stem}.returned-{uuid.uuid4().hex[:8]}{name.suffix}")
        os.link(claim.path, target)
    os.unlink(claim.path)
    if with_done_marker:
        done_marker(target).touch()
    return target


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def archive(claimed: ClaimedFile, archive_dir: Path, operation_id: int, today: datetime) -> Path:
    """Move a processed file to ``archive/<operation>/<YYYY-MM-DD>/<stem>.opN<suffix>``."""
    folder = archive_dir / claimed.operation_type.value / today.date().isoformat()
    target = _move(claimed, folder, operation_id)
    os.utime(target)  # retention counts from archiving, not from the sender's modification time
    return target


def reject(claimed: ClaimedFile, outbox_dir: Path, operation_id: int) -> Path:
    """Move a rejected file beside its error report: ``outbox/<operation>/rejected/``."""
    return _move(claimed, outbox_dir / claimed.operation_type.value / "rejected", operation_id)


def _move(claimed: ClaimedFile, folder: Path, operation_id: int) -> Path:
    """Move the claimed file; if it is already gone, another process finished this step first."""
    name = Path(claimed.original_name)
    target = folder / f"{name.stem}.op{operation_id}{name.suffix}"
    try:
        _move_into_folder(shutil.move, claimed.path, target)
    except FileNotFoundError:
        if not target.exists():
            raise
    return target


def _move_into_folder(move: Callable[[Path, Path], object], source: Path, target: Path) -> None:
    """``move(source, target)``, creating the target's folder only when it is missing (the usual case
    costs no mkdir). Raises ``FileNotFoundError`` when ``source`` is gone."""
    try:
        move(source, target)
    except FileNotFoundError:
        if target.parent.is_dir():
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        move(source, target)


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

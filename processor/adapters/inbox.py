"""The inbox on the shared drive: which files count, when they are complete, claiming, moving aside.

Layout: ``inbox/<operation>/`` holds only pending files. A claimed file is renamed (atomically, same
filesystem) into ``inbox/.processing/<operation>/``; when done it moves to
``archive/<operation>/<date>/`` or, when rejected, to ``outbox/<operation>/rejected/``.

Any entry may turn up in an inbox folder: symlinks (to anything, or to nothing), FIFOs, sockets, device
nodes, directories, names of any bytes and length. Every entry is claimed and moved like a file, by
rename, which never follows or opens it; only regular files are ever opened, with ``O_NOFOLLOW`` (a
symlink swapped in is refused, not followed) and ``O_NONBLOCK`` (a FIFO cannot hang the open), and
checked with ``fstat`` on the open descriptor. Names wardbulk builds from an entry's name are fitted
to NAME_MAX (see ``processor.core.names``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from processor.adapters.entries import HASH_BLOCK, NotRegularFile, error_name, open_input
from processor.adapters.folders import REJECTED_FOLDER, VALIDATE_FOLDER
from processor.core.names import NAME_MAX, display_name, fitted_name, outbox_stem, outbox_suffix
from processor.core.operation_kinds import TRIGGER_TYPES, OperationType, rank_of
from processor.logs import get_logger

log = get_logger(__name__)

PROCESSING_FOLDER = ".processing"
REFUSED_FOLDER = ".refused"
DONE_SUFFIX = ".done"
INPUT_SUFFIXES = (".csv", ".xlsx")  # the files an operation reads; any other is refused (not-csv)
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", DONE_SUFFIX)


def is_ignored(name: str) -> bool:
    """Dotfiles, temporary and partial files, Excel's ``~$`` lock files and ``.done`` markers."""
    return name.startswith((".", "~$")) or name.lower().endswith(IGNORED_SUFFIXES)


def done_marker(path: Path) -> Path:
    """The marker ``<name>.done`` that says ``path`` is complete."""
    return path.with_name(path.name + DONE_SUFFIX)


def can_have_done_marker(path: Path) -> bool:
    """Whether ``<name>.done`` fits NAME_MAX. A longer name is taken by the stability rule instead,
    even where markers are configured: it would otherwise wait for a marker no sender can make."""
    return len(os.fsencode(path.name + DONE_SUFFIX)) <= NAME_MAX


def has_done_marker(path: Path) -> bool:
    """Whether ``<name>.done`` exists; never for a name too long to have one (it could not be made)."""
    try:
        return done_marker(path).exists()
    except OSError:  # ENAMETOOLONG: the name plus ".done" exceeds NAME_MAX
        return False


def remove_done_marker(path: Path) -> None:
    """Remove ``<name>.done`` if there is one. Never raises: it runs after the claiming rename, which
    must stand (a marker left behind is harmless: a marker alone is never taken)."""
    if not can_have_done_marker(path):
        return
    try:
        done_marker(path).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("done_marker_not_removed", file=display_name(path.name), error=error_name(exc))


@dataclass(frozen=True)
class InboxFile:
    """A candidate file in ``inbox/<operation>/``, or in its ``validate/`` folder for a dry run."""

    path: Path
    operation_type: OperationType
    dry_run: bool = False
    sender: str | None = None  # the sender whose own subfolder it is in (``[[senders]]`` folder)


def scan(
    inbox_dir: Path,
    operation_types: list[OperationType],
    sender_folders: Mapping[tuple[OperationType, str], str] | None = None,
) -> Iterator[InboxFile]:
    """Every candidate file present now, oldest modification first (the arrival order at start).

    Equal modification times (file systems keep them coarsely) are ordered by ``rank_of`` (the order of
    a hospital's day: beds, patients, admissions, discharges, exports), then by name.
    """
    found = []
    for operation_type in operation_types:
        folder = inbox_dir / operation_type.value
        rank = rank_of(operation_type)
        tried = () if operation_type in TRIGGER_TYPES else ((folder / VALIDATE_FOLDER, True, None),)
        senders = [
            (folder / subfolder, False, name)
            for (kind, subfolder), name in (sender_folders or {}).items()
            if kind == operation_type
        ]
        for candidates, dry_run, sender in ((folder, False, None), *tried, *senders):
            if not candidates.is_dir():
                continue
            for entry in _entries(candidates):
                if is_ignored(entry.name) or is_senders_folder(entry):
                    continue
                try:
                    modified = entry.stat(follow_symlinks=False).st_mtime_ns
                except FileNotFoundError:
                    continue  # another daemon claimed it between listing and stat
                inbox_file = InboxFile(Path(entry.path), operation_type, dry_run, sender)
                found.append((modified, rank, entry.name, inbox_file))
    for *_, inbox_file in sorted(found, key=lambda item: item[:3]):
        yield inbox_file


def is_senders_folder(entry: os.DirEntry[str]) -> bool:
    """A real folder not named like an input file: a sender's own, left alone. A folder named ``x.csv``
    (or ``x.xlsx``) is an entry like any other, refused unread (``not-a-regular-file``) so that its
    sender hears of it."""
    try:
        return entry.is_dir(follow_symlinks=False) and not entry.name.lower().endswith(INPUT_SUFFIXES)
    except OSError:
        return False


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """Every entry of ``folder`` (files or not: each gets an answer), none when it cannot be listed now
    (removed, replaced, a share gone): the next scan tries again, and one folder stops no other."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        log_folder_unreadable(folder, exc)
        return []


def log_folder_unreadable(folder: Path, exc: OSError) -> None:
    log.warning("inbox_folder_unreadable", folder=display_name(str(folder)), error=error_name(exc))


def operation_type_of(inbox_dir: Path, path: Path) -> OperationType | None:
    """The operation whose inbox folder, or a subfolder of it, directly holds ``path``, if any."""
    folder = path.parent.parent if path.parent.parent.parent == inbox_dir else path.parent
    if folder.parent != inbox_dir:
        return None
    try:
        return OperationType(folder.name)
    except ValueError:
        return None


def is_for_a_dry_run(inbox_dir: Path, path: Path) -> bool:
    """Whether ``path`` lies in an operation's ``validate/`` folder (``inbox/<op>/validate/``)."""
    return path.parent.name == VALIDATE_FOLDER and path.parent.parent.parent == inbox_dir


def inbox_file_of(
    inbox_dir: Path, path: Path, sender_folders: Mapping[tuple[OperationType, str], str] | None = None
) -> InboxFile | None:
    """The candidate at ``path``: in an operation's folder, its ``validate/`` folder (a dry run) or a
    sender's own folder; None anywhere else (a sender's folder of its own that no sender names)."""
    operation_type = operation_type_of(inbox_dir, path)
    if operation_type is None:
        return None
    if path.parent.parent == inbox_dir:
        return InboxFile(path, operation_type)
    if is_for_a_dry_run(inbox_dir, path):  # a request's content is never read: nothing to try
        return None if operation_type in TRIGGER_TYPES else InboxFile(path, operation_type, dry_run=True)
    sender = (sender_folders or {}).get((operation_type, path.parent.name))
    return InboxFile(path, operation_type, sender=sender) if sender else None


@dataclass(frozen=True)
class ClaimedFile:
    """An entry this process owns: moved out of the inbox into the processing area.

    ``original_name`` is the entry's name as dropped, as ``display_name`` shows it (escaped): what the
    BulkOperation, the summary and the logs say, and what the outbox names are derived from.
    """

    path: Path
    original_name: str
    operation_type: OperationType
    owner: str

    @property
    def size(self) -> int:
        """The entry's own size (a symlink's, never its target's)."""
        return os.lstat(self.path).st_size

    @property
    def is_regular_file(self) -> bool:
        """Whether the claimed entry itself is a regular file (symlinks are not followed)."""
        return stat.S_ISREG(os.lstat(self.path).st_mode)


def owner_name(path: Path) -> str:
    """The OS user owning ``path`` itself (``uid-N`` when the user is unknown on this host)."""
    return _user_name(os.lstat(path).st_uid)


@lru_cache(maxsize=256)
def _user_name(uid: int) -> str:
    """Cached: the lookup reads the user database (/etc/passwd, or a directory service) every time."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"


def processing_folder(inbox_dir: Path, operation_type: OperationType) -> Path:
    return inbox_dir / PROCESSING_FOLDER / operation_type.value


NEW_CLAIM, DRY_RUN_CLAIM, SENDERS_CLAIM = "new", "try", "new@"


def claim_name(owner: str, name: str, dry_run: bool = False, from_folder: str | None = None) -> str:
    """``new~<owner>~<random>__<name>`` (the owner's colons as ``~``, which SMB shares accept), the name
    fitted so that the whole stays within NAME_MAX. A claim returned to the inbox after a crash goes back
    where it came from: ``try~…`` is a dry run's (back to ``validate/``: never applied), ``new@<folder>~…``
    a sender's own folder's (back there, read as that sender's)."""
    kind = DRY_RUN_CLAIM if dry_run else f"{SENDERS_CLAIM}{from_folder}" if from_folder else NEW_CLAIM
    prefix = f"{kind}~{owner.replace(':', '~')}~{uuid.uuid4().hex[:12]}__"
    return prefix + fitted_name(name, NAME_MAX - len(prefix.encode("utf-8")))


def _claimer_of(path: Path) -> str:
    return ":".join(path.name.split("__", 1)[0].split("~")[1:-1])


def _name_part(path: Path) -> str:
    """The dropped entry's name (fitted) that a processing-area name carries after ``__``."""
    return path.name.split("__", 1)[1]


def claim(inbox_dir: Path, candidate: InboxFile, claimer: str) -> ClaimedFile | None:
    """Rename the file into the processing area. None if another process took (or removed) it first."""
    target_folder = processing_folder(inbox_dir, candidate.operation_type)
    from_folder = candidate.path.parent.name if candidate.sender else None
    target = target_folder / claim_name(claimer, candidate.path.name, candidate.dry_run, from_folder)
    try:
        owner = owner_name(candidate.path)
        _move_into_folder(os.rename, candidate.path, target)
    except FileNotFoundError:
        return None
    remove_done_marker(candidate.path)
    return ClaimedFile(target, display_name(candidate.path.name), candidate.operation_type, owner)


def copy_in(
    inbox_dir: Path,
    source: Path,
    operation_type: OperationType,
    owner: str,
    claimer: str,
    dry_run: bool = False,
) -> ClaimedFile:
    """Claim a copy of a file from outside the inbox (``wardbulk process``); the original stays.

    Only a regular file is copied, read through a descriptor opened without following a symlink or
    waiting on a FIFO. Any other entry is claimed as a symlink to it, which the pipeline refuses
    (``not-a-regular-file``) without ever opening it, as it refuses such an entry in the inbox.
    """
    target_folder = processing_folder(inbox_dir, operation_type)
    target_folder.mkdir(parents=True, exist_ok=True)
    target = target_folder / claim_name(claimer, source.name, dry_run)
    try:
        with open_input(source) as reader, target.open("xb") as writer:
            shutil.copyfileobj(reader, writer, HASH_BLOCK)
    except NotRegularFile:
        target.unlink(missing_ok=True)
        os.symlink(source.absolute(), target)
    return ClaimedFile(target, display_name(source.name), operation_type, owner)


def bind_to_operation(claimed: ClaimedFile, operation_id: int) -> ClaimedFile:
    """Rename the claimed file to ``op<N>__<name>`` so that recovery finds it by operation."""
    target = claimed.path.with_name(f"op{operation_id}__{_name_part(claimed.path)}")
    os.rename(claimed.path, target)
    return ClaimedFile(target, claimed.original_name, claimed.operation_type, claimed.owner)


BOUND_NAME = re.compile(r"^op(\d+)__")


def bound_operation_ids(inbox_dir: Path) -> list[int]:
    """The operations whose input is bound in the processing area (``bind_to_operation``: at work, or
    committed and not yet published); anything else there is ignored."""
    found = []
    for operation_type in OperationType:
        folder = processing_folder(inbox_dir, operation_type)
        matches = (BOUND_NAME.match(path.name) for path in folder.glob("op*__*"))
        found += [int(match.group(1)) for match in matches if match]
    return found


def claimed_file_of(
    inbox_dir: Path, operation_type: OperationType, operation_id: int, original_name: str
) -> ClaimedFile | None:
    """The claimed file of an operation, found in the processing area after a restart.

    ``original_name`` is the name the operation recorded (its processing-area name may be fitted).
    """
    for path in processing_folder(inbox_dir, operation_type).glob(f"op{operation_id}__*"):
        return ClaimedFile(path, original_name, operation_type, owner_name(path))
    return None


@dataclass(frozen=True)
class UnboundClaim:
    """A file claimed but not yet bound to an operation: its claimer may have died in between."""

    path: Path
    operation_type: OperationType
    claimer: str
    claimed_at: datetime

    @property
    def dry_run(self) -> bool:
        """Whether it was claimed for a dry run (it goes back to the ``validate/`` folder)."""
        return self.path.name.startswith(f"{DRY_RUN_CLAIM}~")

    @property
    def from_folder(self) -> str | None:
        """The sender's own folder it was claimed from, if any (it goes back there)."""
        kind = self.path.name.split("~", 1)[0]
        return kind.removeprefix(SENDERS_CLAIM) if kind.startswith(SENDERS_CLAIM) else None

    @property
    def original_name(self) -> str:
        """The name it was dropped under (fitted to NAME_MAX: a long name comes back derived)."""
        return _name_part(self.path)


def unbound_claims(inbox_dir: Path) -> Iterator[UnboundClaim]:
    """Every claimed file not yet bound to an operation, with its claimer (``host:pid``)."""
    for operation_type in OperationType:
        folder = processing_folder(inbox_dir, operation_type)
        for path in (*folder.glob(f"{NEW_CLAIM}*~*__*"), *folder.glob(f"{DRY_RUN_CLAIM}~*__*")):
            try:
                claimed_at = datetime.fromtimestamp(os.lstat(path).st_ctime, UTC)  # the claiming rename
            except FileNotFoundError:
                continue
            yield UnboundClaim(path, operation_type, _claimer_of(path), claimed_at)


def return_to_inbox(inbox_dir: Path, claim: UnboundClaim, with_done_marker: bool) -> Path:
    """Put an abandoned claim back where it was dropped, never over a newer file of the same name.

    ``with_done_marker`` recreates the ``.done`` marker that claiming removed, for operations that wait
    for one (without it the file would never be taken again).
    """
    folder = inbox_dir / claim.operation_type.value
    if claim.dry_run:
        folder /= VALIDATE_FOLDER
    elif claim.from_folder:
        folder /= claim.from_folder
    target = folder / claim.original_name
    target.parent.mkdir(exist_ok=True)
    try:
        _put_back(claim.path, target)
    except FileExistsError:
        name = Path(claim.original_name)
        returned = f"{name.stem}.returned-{uuid.uuid4().hex[:8]}{name.suffix}"
        target = target.with_name(fitted_name(returned, NAME_MAX))
        _put_back(claim.path, target)
    if with_done_marker and can_have_done_marker(target):
        done_marker(target).touch()
    return target


def _put_back(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, raising ``FileExistsError`` rather than replacing a file there.

    A hard link then an unlink never replaces (a rename would); a directory cannot be hard-linked, so it
    is renamed after a check (a rename does not replace a non-empty directory either).
    """
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV):
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from exc
        os.rename(source, target)
        return
    os.unlink(source)


def archive(claimed: ClaimedFile, archive_dir: Path, operation_id: int, today: datetime) -> Path:
    """Move a processed file to ``archive/<operation>/<YYYY-MM-DD>/<stem>.opN<suffix>``."""
    folder = archive_dir / claimed.operation_type.value / today.date().isoformat()
    target = _move(claimed, folder, operation_id)
    _touch(target)  # retention counts from archiving, not from the sender's modification time
    return target


def reject(claimed: ClaimedFile, outbox_dir: Path, operation_id: int) -> Path:
    """Move a rejected file beside its error report: ``outbox/<operation>/rejected/``."""
    target = _move(claimed, outbox_dir / claimed.operation_type.value / REJECTED_FOLDER, operation_id)
    _touch(target)  # retention counts from here, not from the sender's time
    return target


def _touch(moved: Path) -> None:
    """Set a moved input's times to now, for retention. A file its sender owns and did not let wardbulk
    write may refuse (EPERM, EACCES): that is the file's, not the host's, and retention then counts from
    the sender's own time; it is logged and the move stands."""
    try:
        os.utime(moved, follow_symlinks=False)
    except PermissionError as exc:
        log.info("moved_file_time_kept", file=display_name(moved.name), error=error_name(exc))


def moved_name(original_name: str, operation_id: int) -> str:
    """``<stem>.op<N><suffix>``: the name of a processed input in the archive or beside its report."""
    return f"{outbox_stem(original_name)}.op{operation_id}{outbox_suffix(original_name)}"


def _move(claimed: ClaimedFile, folder: Path, operation_id: int) -> Path:
    """Move the claimed entry; if it is already gone, another process finished this step first."""
    target = folder / moved_name(claimed.original_name, operation_id)
    try:
        _move_into_folder(_move_entry, claimed.path, target)
    except FileNotFoundError:
        if not os.path.lexists(target):
            raise
    return target


def _move_entry(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; to another filesystem, copy a regular file or a symlink (the
    link, not what it names) and remove the source. Another entry (a FIFO, a socket, a device, a
    directory) cannot be copied faithfully: it moves to ``refused_folder`` beside the processing area,
    on its own filesystem, and ``target`` becomes a symlink to where it went."""
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        mode = os.lstat(source).st_mode
        if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
            _copy_then_remove(source, target)
            return
        kept = refused_folder(source.parent) / source.name
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, kept)
        os.symlink(kept.absolute(), target)


def _copy_then_remove(source: Path, target: Path) -> None:
    """Move across filesystems: copy under a hidden temporary name, fsync, rename into place, then
    remove the source. A copy cut short (a full disk, a kill) never shows under the final name; its
    temporary file is removed here, or by recovery after a kill (``leftovers``)."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        if stat.S_ISLNK(os.lstat(source).st_mode):
            os.symlink(os.readlink(source), temporary)
        else:
            shutil.copy2(source, temporary)
            with open(temporary, "rb") as copied:
                os.fsync(copied.fileno())
        os.rename(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    os.unlink(source)


def refused_folder(processing: Path) -> Path:
    """Where entries that cannot leave the inbox's filesystem are kept: ``inbox/.refused/<operation>/``."""
    return processing.parent.parent / REFUSED_FOLDER / processing.name


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

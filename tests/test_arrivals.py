"""When an inbox file counts, when it is complete, in which order it leaves, and how it is claimed."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from processor.adapters.arrivals import ArrivalQueue
from processor.adapters.inbox import (
    PROCESSING_FOLDER,
    InboxFile,
    claim,
    done_marker,
    inbox_file_of,
    is_ignored,
    operation_type_of,
    scan,
)
from processor.adapters.owners import this_process
from processor.core.operation_kinds import OperationType

IMPORT = OperationType.IMPORT_PATIENTS
ASSIGN = OperationType.BULK_ASSIGNMENT
WINDOW = 10.0
OLD_MTIME = 1_000_000_000.0  # 2001: a copied file keeps its sender's modification time


def never(_: InboxFile) -> bool:
    return False


def always(_: InboxFile) -> bool:
    return True


@pytest.fixture
def inbox_dir(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    for operation_type in (IMPORT, ASSIGN):
        (root / operation_type.value).mkdir(parents=True)
    return root


def drop(
    inbox_dir: Path,
    name: str,
    content: str = "first_name,last_name,email\n",
    operation_type: OperationType = IMPORT,
    mtime: float | None = None,
) -> InboxFile:
    path = inbox_dir / operation_type.value / name
    path.write_text(content, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return InboxFile(path, operation_type)


def names(files: list[InboxFile]) -> list[str]:
    return [f.path.name for f in files]


# --- is_ignored -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.csv",
        ".DS_Store",
        "x.tmp",
        "x.csv.tmp",
        "x.part",
        "x.partial",
        "X.CSV.PART",
        "~$x.csv",
        "x.csv.done",
    ],
)
def test_dotfiles_temporary_partial_lock_and_marker_files_are_ignored(name: str) -> None:
    """Dotfiles, *.tmp, *.part, *.partial, Excel ~$ lock files and .done markers are never taken."""
    assert is_ignored(name)


@pytest.mark.parametrize("name", ["x.csv", "X.CSV", "x.txt", "report.done.csv", "x"])
def test_ordinary_files_including_non_csv_ones_are_not_ignored(name: str) -> None:
    """Any other file is taken, even a non-CSV one, so that it can be rejected with not-csv."""
    assert not is_ignored(name)


# --- scan -------------------------------------------------------------------------------------------


def test_scan_lists_regular_files_of_the_requested_folders_oldest_modification_first(inbox_dir: Path) -> None:
    """scan yields the candidate files of the requested operations, by modification time, oldest first."""
    drop(inbox_dir, "newest.csv", mtime=OLD_MTIME + 300)
    drop(inbox_dir, "oldest.csv", mtime=OLD_MTIME + 100)
    drop(inbox_dir, "middle.csv", operation_type=ASSIGN, mtime=OLD_MTIME + 200)
    found = list(scan(inbox_dir, [IMPORT, ASSIGN]))
    assert names(found) == ["oldest.csv", "middle.csv", "newest.csv"]
    assert [f.operation_type for f in found] == [IMPORT, ASSIGN, IMPORT]
    assert found[1].path == inbox_dir / "bulk_assignment" / "middle.csv"


def test_scan_skips_ignored_files_and_a_senders_own_folders(inbox_dir: Path) -> None:
    """Ignored names and folders of a sender's own (no .csv name) are not candidates; nothing inside a
    folder is."""
    drop(inbox_dir, "real.csv")
    for name in (".hidden.csv", "x.tmp", "x.part", "x.partial", "~$real.csv", "real.csv.done"):
        drop(inbox_dir, name)
    subfolder = inbox_dir / "import_patients" / "ward-clerks"
    subfolder.mkdir()
    (subfolder / "nested.csv").write_text("first_name,last_name,email\n", encoding="utf-8")
    assert names(list(scan(inbox_dir, [IMPORT]))) == ["real.csv"]


def test_scan_offers_every_other_entry_that_is_not_a_regular_file(inbox_dir: Path) -> None:
    """A symlink (dangling too), a FIFO and a folder named like a CSV are candidates, so that each gets
    its answer (refused unread) instead of lying in the inbox unanswered."""
    folder = inbox_dir / "import_patients"
    (folder / "link.csv").symlink_to(folder / "nowhere.csv")
    os.mkfifo(folder / "pipe.csv")
    (folder / "folder.csv").mkdir()
    assert sorted(names(list(scan(inbox_dir, [IMPORT])))) == ["folder.csv", "link.csv", "pipe.csv"]


def test_scan_looks_only_at_the_requested_operation_folders(inbox_dir: Path) -> None:
    """Files in the inbox folder of an operation not asked for are left alone."""
    drop(inbox_dir, "mine.csv")
    drop(inbox_dir, "other.csv", operation_type=ASSIGN)
    assert names(list(scan(inbox_dir, [IMPORT]))) == ["mine.csv"]


def test_scan_tolerates_missing_folders(tmp_path: Path, inbox_dir: Path) -> None:
    """A missing operation folder, or a missing inbox, yields nothing instead of failing."""
    drop(inbox_dir, "a.csv")
    assert names(list(scan(inbox_dir, [OperationType.SYNC_BEDS, IMPORT]))) == ["a.csv"]
    assert list(scan(tmp_path / "no-such-inbox", list(OperationType))) == []


# --- operation_type_of and done_marker --------------------------------------------------------------


def test_operation_type_of_is_the_inbox_folder_holding_the_file_or_its_subfolder(inbox_dir: Path) -> None:
    """A file in inbox/<known operation>/ or one of its subfolders (validate/, a sender's) has that
    operation's type; which subfolders are taken is ``inbox_file_of``'s to say."""
    assert operation_type_of(inbox_dir, inbox_dir / "import_patients" / "a.csv") == IMPORT
    assert operation_type_of(inbox_dir, inbox_dir / "bulk_assignment" / "a.csv") == ASSIGN
    assert operation_type_of(inbox_dir, inbox_dir / "unknown_op" / "a.csv") is None
    assert operation_type_of(inbox_dir, inbox_dir / "import_patients" / "sub" / "a.csv") == IMPORT
    assert operation_type_of(inbox_dir, inbox_dir / PROCESSING_FOLDER / "import_patients" / "a.csv") is None
    assert operation_type_of(inbox_dir, inbox_dir / "a.csv") is None


def test_only_the_validate_folder_and_senders_folders_are_taken(inbox_dir: Path) -> None:
    folder = inbox_dir / "import_patients"
    assert inbox_file_of(inbox_dir, folder / "a.csv") == InboxFile(folder / "a.csv", IMPORT)
    assert inbox_file_of(inbox_dir, folder / "validate" / "a.csv") == InboxFile(
        folder / "validate" / "a.csv", IMPORT, dry_run=True
    )
    senders = {(IMPORT, "lab-feed"): "lab"}
    assert inbox_file_of(inbox_dir, folder / "lab-feed" / "a.csv", senders) == InboxFile(
        folder / "lab-feed" / "a.csv", IMPORT, sender="lab"
    )
    assert inbox_file_of(inbox_dir, folder / "sub" / "a.csv", senders) is None  # a sender's own, left alone
    assert inbox_file_of(inbox_dir, folder / "lab-feed" / "deeper" / "a.csv", senders) is None


def test_the_done_marker_is_the_file_name_plus_done(tmp_path: Path) -> None:
    """The marker of x.csv is x.csv.done, beside it."""
    assert done_marker(tmp_path / "x.csv") == tmp_path / "x.csv.done"


# --- ArrivalQueue: readiness ------------------------------------------------------------------------


def test_a_file_with_an_old_mtime_is_not_ready_before_the_window_from_first_sight(inbox_dir: Path) -> None:
    """The stability window counts from first sight, not from the file's (possibly old) mtime."""
    queue = ArrivalQueue(WINDOW, never)
    queue.offer(drop(inbox_dir, "copied.csv", mtime=OLD_MTIME), now=100.0)
    assert queue.take_ready(100.0) == []
    assert queue.take_ready(100.0 + WINDOW - 0.1) == []
    assert len(queue) == 1


def test_an_unchanged_file_is_ready_once_the_window_has_passed(inbox_dir: Path) -> None:
    """A file whose size and mtime have not changed for the whole window is ready, and leaves the queue."""
    queue = ArrivalQueue(WINDOW, never)
    sent = drop(inbox_dir, "a.csv")
    queue.offer(sent, now=100.0)
    assert queue.take_ready(100.0 + WINDOW) == [sent]
    assert len(queue) == 0
    assert queue.take_ready(200.0) == []


def test_a_growing_file_restarts_the_window(inbox_dir: Path) -> None:
    """A change of size seen at a check restarts the window from that check."""
    queue = ArrivalQueue(WINDOW, never)
    sent = drop(inbox_dir, "a.csv")
    queue.offer(sent, now=100.0)
    assert queue.take_ready(105.0) == []
    with sent.path.open("a", encoding="utf-8") as f:
        f.write("Jane,Doe,jane@example.org\n")
    assert queue.take_ready(109.0) == []  # change seen here: the window restarts at 109
    assert queue.take_ready(100.0 + WINDOW) == []
    assert queue.take_ready(109.0 + WINDOW - 0.1) == []
    assert queue.take_ready(109.0 + WINDOW) == [sent]


def test_a_touched_file_restarts_the_window(inbox_dir: Path) -> None:
    """A change of modification time alone (same size) also restarts the window."""
    queue = ArrivalQueue(WINDOW, never)
    sent = drop(inbox_dir, "a.csv", mtime=OLD_MTIME)
    queue.offer(sent, now=100.0)
    os.utime(sent.path, (OLD_MTIME + 60, OLD_MTIME + 60))
    assert queue.take_ready(105.0) == []
    assert queue.take_ready(100.0 + WINDOW) == []
    assert queue.take_ready(105.0 + WINDOW) == [sent]


def test_a_file_renamed_into_the_folder_is_ready_at_once(inbox_dir: Path) -> None:
    """A rename into the inbox is atomic, so the file is complete when it is seen."""
    queue = ArrivalQueue(WINDOW, never)
    sent = drop(inbox_dir, "a.csv")
    queue.offer(sent, now=100.0, renamed_in=True)
    assert queue.take_ready(100.0) == [sent]


def test_a_rename_sighting_of_a_queued_file_makes_it_ready_at_once(inbox_dir: Path) -> None:
    """A file first seen by a scan and then reported as renamed in is ready without waiting."""
    queue = ArrivalQueue(WINDOW, never)
    sent = drop(inbox_dir, "a.csv")
    queue.offer(sent, now=100.0)
    queue.offer(sent, now=101.0, renamed_in=True)
    assert queue.take_ready(101.0) == [sent]


def test_a_zero_window_makes_a_file_ready_at_first_sight(inbox_dir: Path) -> None:
    """With stability_window_s = 0 a file is ready as soon as it is seen."""
    queue = ArrivalQueue(0, never)
    sent = drop(inbox_dir, "a.csv")
    queue.offer(sent, now=100.0)
    assert queue.take_ready(100.0) == [sent]


# --- ArrivalQueue: order ----------------------------------------------------------------------------


def test_files_leave_in_arrival_order_across_operations(inbox_dir: Path) -> None:
    """Files leave in the order they were offered, whatever their names, mtimes or operations."""
    queue = ArrivalQueue(0, never)
    offered = [
        drop(inbox_dir, "z.csv", mtime=OLD_MTIME + 3),
        drop(inbox_dir, "assign.csv", operation_type=ASSIGN, mtime=OLD_MTIME + 1),
        drop(inbox_dir, "a.csv", mtime=OLD_MTIME + 2),
    ]
    for tick, inbox_file in enumerate(offered):
        queue.offer(inbox_file, now=100.0 + tick)
    assert queue.take_ready(200.0) == offered


def test_a_file_not_yet_ready_holds_back_later_ready_files(inbox_dir: Path) -> None:
    """Head of line: a ready file never overtakes an earlier file that is not ready yet."""
    queue = ArrivalQueue(WINDOW, never)
    imports = drop(inbox_dir, "admissions.csv")
    assignments = drop(inbox_dir, "beds.csv", operation_type=ASSIGN)
    queue.offer(imports, now=100.0)
    queue.offer(assignments, now=101.0, renamed_in=True)
    assert queue.take_ready(105.0) == []
    assert len(queue) == 2
    assert queue.take_ready(100.0 + WINDOW) == [imports, assignments]
    assert len(queue) == 0


def test_a_vanished_file_is_dropped_without_blocking_the_others(inbox_dir: Path) -> None:
    """A queued file that disappeared (deleted, or taken by another daemon) is forgotten."""
    queue = ArrivalQueue(WINDOW, never)
    gone = drop(inbox_dir, "gone.csv")
    kept = drop(inbox_dir, "kept.csv")
    queue.offer(gone, now=100.0)
    queue.offer(kept, now=100.0, renamed_in=True)
    gone.path.unlink()
    assert queue.take_ready(100.0) == [kept]
    assert len(queue) == 0


def test_a_file_that_vanished_before_being_offered_is_not_queued(inbox_dir: Path) -> None:
    """Offering a path that no longer exists does nothing."""
    queue = ArrivalQueue(0, never)
    queue.offer(InboxFile(inbox_dir / "import_patients" / "ghost.csv", IMPORT), now=100.0)
    assert len(queue) == 0


def test_offering_a_file_again_keeps_its_original_place_and_window(inbox_dir: Path) -> None:
    """A second sighting neither moves a file back in the queue nor restarts its window."""
    queue = ArrivalQueue(WINDOW, never)
    first = drop(inbox_dir, "first.csv")
    second = drop(inbox_dir, "second.csv")
    queue.offer(first, now=100.0)
    queue.offer(second, now=101.0)
    queue.offer(first, now=102.0)
    assert len(queue) == 2
    assert queue.take_ready(101.0 + WINDOW) == [first, second]


# --- ArrivalQueue: done markers ---------------------------------------------------------------------


def test_without_its_done_marker_a_file_has_not_arrived(inbox_dir: Path) -> None:
    """For an operation configured with done markers, a file without <name>.done is not queued."""
    queue = ArrivalQueue(WINDOW, always)
    sent = drop(inbox_dir, "a.csv")
    queue.offer(sent, now=100.0)
    assert len(queue) == 0
    assert queue.take_ready(1000.0) == []


def test_once_its_done_marker_exists_a_file_is_ready_at_once(inbox_dir: Path) -> None:
    """The marker says the file is complete: offered again after it appears, the file is ready at once."""
    queue = ArrivalQueue(WINDOW, always)
    sent = drop(inbox_dir, "a.csv")
    queue.offer(sent, now=100.0)
    done_marker(sent.path).touch()
    queue.offer(sent, now=105.0)
    assert queue.take_ready(105.0) == [sent]


def test_a_name_too_long_for_a_marker_is_taken_by_the_stability_rule(inbox_dir: Path) -> None:
    """<name>.done cannot exist for a 252-byte name: it is not left waiting for one forever."""
    queue = ArrivalQueue(WINDOW, always)
    sent = drop(inbox_dir, "n" * 248 + ".csv")
    queue.offer(sent, now=100.0)
    assert queue.take_ready(100.0) == []
    assert queue.take_ready(100.0 + WINDOW) == [sent]


def test_a_name_too_long_for_a_marker_is_claimed(inbox_dir: Path) -> None:
    """Claiming looks for the marker to remove it; a name that cannot have one is claimed all the same."""
    sent = drop(inbox_dir, "n" * 251 + ".csv")
    claimed = claim(inbox_dir, sent, this_process())
    assert claimed is not None and claimed.original_name == sent.path.name
    assert len(claimed.path.name.encode()) <= 255


def test_the_marker_rule_applies_only_where_configured(inbox_dir: Path) -> None:
    """needs_marker is asked per file: other operations still use the stability window."""
    queue = ArrivalQueue(WINDOW, lambda f: f.operation_type == ASSIGN)
    imports = drop(inbox_dir, "a.csv")
    assignments = drop(inbox_dir, "b.csv", operation_type=ASSIGN)
    queue.offer(imports, now=100.0)
    queue.offer(assignments, now=100.0)
    assert len(queue) == 1
    assert queue.take_ready(100.0 + WINDOW) == [imports]


# --- claim ------------------------------------------------------------------------------------------


def test_claim_moves_the_file_into_the_processing_area(inbox_dir: Path) -> None:
    """A claimed file is renamed into inbox/.processing/<op>/ and is no longer in the inbox folder."""
    sent = drop(inbox_dir, "admissions.csv", content="first_name,last_name,email\nA,B,a@example.org\n")
    claimed = claim(inbox_dir, sent, this_process())
    assert claimed is not None
    assert not sent.path.exists()
    assert list(scan(inbox_dir, [IMPORT])) == []
    assert claimed.path.parent == inbox_dir / PROCESSING_FOLDER / "import_patients"
    assert claimed.path.is_file()
    assert claimed.path.read_text(encoding="utf-8") == "first_name,last_name,email\nA,B,a@example.org\n"
    assert claimed.original_name == "admissions.csv"
    assert claimed.operation_type == IMPORT


def test_claim_records_the_owner_of_the_dropped_file(inbox_dir: Path) -> None:
    """The claimed file remembers which OS user dropped it."""
    claimed = claim(inbox_dir, drop(inbox_dir, "a.csv"), this_process())
    assert claimed is not None
    assert claimed.owner == pwd.getpwuid(os.getuid()).pw_name


def test_claim_removes_the_done_marker(inbox_dir: Path) -> None:
    """The file's <name>.done marker goes with the claim, so nothing is left behind in the inbox."""
    sent = drop(inbox_dir, "a.csv")
    done_marker(sent.path).touch()
    assert claim(inbox_dir, sent, this_process()) is not None
    assert not done_marker(sent.path).exists()
    assert list((inbox_dir / "import_patients").iterdir()) == []


def test_claiming_a_file_someone_else_took_returns_none(inbox_dir: Path) -> None:
    """Two daemons race for one file: the second claim finds it gone and gets None."""
    sent = drop(inbox_dir, "a.csv")
    winner = claim(inbox_dir, sent, this_process())
    loser = claim(inbox_dir, sent, this_process())
    assert winner is not None
    assert loser is None
    assert list((inbox_dir / PROCESSING_FOLDER / "import_patients").iterdir()) == [winner.path]

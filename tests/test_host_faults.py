"""A fault of the host is a pause, not a verdict (issue 18): how faults are told apart, how the pause
waits and ends, how the queue keeps its order, and which temporary files recovery removes.

The same behaviour on real small and read-only filesystems: tests/test_full_disk.py.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from processor.adapters import leftovers
from processor.adapters.arrivals import ArrivalQueue
from processor.adapters.database.engine import build_engine
from processor.adapters.database.translation import translated
from processor.adapters.inbox import InboxFile, processing_folder
from processor.adapters.storage import HostAreas, probe, shortage_for
from processor.core.operation_kinds import OperationType
from processor.core.problems import Code, FileRejected
from processor.errors import DatabaseStorageFull
from processor.pipeline.faults import Disposition, disposition_of, host_os_error
from processor.pipeline.pause import LONGEST_WAIT_S, HostPause

IMPORT = OperationType.IMPORT_PATIENTS


@pytest.fixture
def areas(tmp_path: Path) -> HostAreas:
    return HostAreas(tmp_path / "outbox", tmp_path / "archive", tmp_path / "inbox" / ".processing")


# --- What is the host's fault -----------------------------------------------------------------------


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ESTALE])
def test_a_full_or_read_only_disk_waits_wherever_it_is_met(number: int, areas: HostAreas) -> None:
    error = OSError(number, os.strerror(number), "/anywhere/at/all")
    assert disposition_of(error, areas) is Disposition.WAIT


def test_a_host_error_raised_while_handling_another_is_still_the_hosts(areas: HostAreas) -> None:
    """A writer closed in a ``finally``, a future's result, a library that wraps: the chain is read."""
    full = OSError(errno.ENOSPC, "No space left on device", str(areas.outbox / "x"))
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("while writing the result") from exc
    except RuntimeError as wrapped:
        assert disposition_of(wrapped, areas) is Disposition.WAIT
        assert host_os_error(wrapped, areas) is full
    try:
        try:
            raise full
        except OSError:
            raise ValueError("a second failure while cleaning up")  # noqa: B904 (the implicit context)
    except ValueError as implicit:
        assert disposition_of(implicit, areas) is Disposition.WAIT


def test_a_refused_permission_is_the_hosts_only_where_wardbulk_writes(areas: HostAreas) -> None:
    def refused(path: Path) -> PermissionError:
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    for ours in (
        areas.outbox / "import_patients" / ".a.op1.result.csv.abc.partial",
        areas.archive / "import_patients" / "2026-12-03" / "a.op1.csv",
        areas.processing / "import_patients" / ".op1.abc.spool",
    ):
        assert disposition_of(refused(ours), areas) is Disposition.WAIT, ours
    senders_file = areas.processing / "import_patients" / "op1__a.csv"
    assert disposition_of(refused(senders_file), areas) is Disposition.CRASH
    assert disposition_of(refused(Path("/etc/shadow")), areas) is Disposition.CRASH


def test_a_files_own_problem_is_still_its_verdict(areas: HostAreas) -> None:
    rejected = FileRejected.single(Code.NOT_CSV, "not a CSV file")
    assert disposition_of(rejected, areas) is Disposition.REJECT
    assert disposition_of(ValueError("a defect"), areas) is Disposition.CRASH


def test_a_database_that_cannot_grow_is_the_hosts_fault_not_a_database_error(tmp_path: Path) -> None:
    """SQLite's own "database or disk is full" (a page limit stands in for the disk): translated as
    storage full, and the file waits instead of being failed with database-error after three tries."""
    engine = build_engine(f"sqlite:///{tmp_path / 'tiny.sqlite3'}")
    event.listen(engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA max_page_count = 8"))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE filler (value TEXT)"))
    with pytest.raises(OperationalError) as raised, engine.begin() as connection:
        for _ in range(100):
            connection.execute(text("INSERT INTO filler VALUES (:v)"), {"v": "x" * 4000})
    engine.dispose()
    assert "full" in str(raised.value)
    assert isinstance(translated(raised.value, None), DatabaseStorageFull)
    assert disposition_of(raised.value) is Disposition.WAIT


# --- The pause -----------------------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_pause_waits_longer_each_time_the_host_cannot_go_on_and_ends_when_it_can(
    areas: HostAreas,
) -> None:
    clock = FakeMonotonic()
    pause = HostPause(areas, "tok", reserve_bytes=0, monotonic=clock)
    assert pause.may_go_on() and not pause.paused and pause.next_check_at is None
    areas.outbox.parent.mkdir(parents=True, exist_ok=True)
    areas.outbox.write_text("a file where the outbox folder should be: nothing can be written there")
    full = OSError(errno.ENOSPC, "No space left on device", str(areas.outbox / "x.csv"))
    with capture_logs() as logs:
        pause.host_fault(full, step="processing")
        pause.host_fault(full, step="publishing")  # the same episode: not logged again
        waits = []
        for _ in range(9):
            at = pause.next_check_at
            assert at is not None
            clock.now = at - 0.01
            assert not pause.may_go_on()  # not yet time to look
            clock.now = at
            assert not pause.may_go_on()  # looked: the outbox still cannot be written
            waits.append(pause.next_check_at - at)
        assert waits == [2, 4, 8, 16, 32, LONGEST_WAIT_S, LONGEST_WAIT_S, LONGEST_WAIT_S, LONGEST_WAIT_S]
        areas.outbox.unlink()  # the host can write again
        clock.now += LONGEST_WAIT_S
        assert pause.may_go_on() and not pause.paused
    assert not list(areas.outbox.iterdir())  # the probe cleaned up after itself
    events = [entry["event"] for entry in logs]
    assert events == ["outbox_unwritable", "host_writable_again"]
    assert logs[0]["area"] == "outbox" and logs[0]["error"] == "ENOSPC"
    assert logs[0]["path"] == str(areas.outbox) and logs[0]["step"] == "processing"


def test_a_fault_after_a_file_went_through_is_a_new_episode(areas: HostAreas) -> None:
    clock = FakeMonotonic()
    pause = HostPause(areas, "tok", reserve_bytes=0, monotonic=clock)
    read_only = OSError(errno.EROFS, "Read-only file system", str(areas.archive / "a.csv"))
    with capture_logs() as logs:
        pause.host_fault(read_only, step="publishing")
        clock.now += 1
        assert pause.may_go_on()
        pause.host_fault(read_only, step="publishing")  # before any file got through: same episode
        clock.now += 2
        assert pause.may_go_on()
        pause.succeeded()
        pause.host_fault(read_only, step="publishing")
    assert [entry["event"] for entry in logs].count("outbox_unwritable") == 2
    assert logs[0]["area"] == "archive" and logs[0]["error"] == "EROFS"


def test_a_file_that_does_not_fit_waits_for_room(areas: HostAreas) -> None:
    free = os.statvfs(areas.outbox.parent).f_bavail * os.statvfs(areas.outbox.parent).f_frsize
    assert shortage_for(1024, areas, reserve=0) is None
    shortage = shortage_for(free, areas, reserve=0)  # its result alone would fill the disk
    assert shortage is not None and shortage.needed > shortage.free
    assert shortage_for(1024, areas, reserve=free) is not None  # the reserve counts too


def test_the_probe_names_the_area_that_cannot_be_written(areas: HostAreas) -> None:
    assert probe(areas, "tok") is None
    areas.archive.rmdir()
    areas.archive.write_text("not a folder")
    unwritable = probe(areas, "tok")
    assert unwritable is not None and unwritable.area == "archive"


# --- The queue keeps its order --------------------------------------------------------------------


def test_files_put_back_keep_their_place_ahead_of_later_arrivals(tmp_path: Path) -> None:
    folder = tmp_path / "inbox" / "import_patients"
    folder.mkdir(parents=True)
    files = []
    for name in ("a.csv", "b.csv", "c.csv", "d.csv"):
        (folder / name).write_text("x")
        files.append(InboxFile(folder / name, IMPORT))
    queue = ArrivalQueue(0.0, lambda _file: False)
    for inbox_file in files[:3]:
        queue.offer(inbox_file, 0.0)
    taken = queue.take_ready(1.0)
    assert taken == files[:3]
    queue.offer(files[3], 2.0)  # arrives while the daemon is paused
    queue.put_back(taken[1:])  # a.csv was processed; b and c were not
    assert queue.take_ready(3.0) == [files[1], files[2], files[3]]


# --- Leftovers --------------------------------------------------------------------------------------


def test_recovery_removes_the_temporary_files_no_process_will_finish(tmp_path: Path) -> None:
    inbox_dir, outbox_dir, archive_dir = tmp_path / "inbox", tmp_path / "outbox", tmp_path / "archive"
    processing = processing_folder(inbox_dir, IMPORT)
    outbox = outbox_dir / "import_patients"
    archived = archive_dir / "import_patients" / "2026-12-01"
    reports = outbox_dir / "reports"
    for folder in (processing, outbox, archived, reports, outbox / "rejected"):
        folder.mkdir(parents=True)
    (processing / "op7__busy.csv").write_text("bound: op7 is at work")
    kept = [
        processing / ".op7.abc.spool",
        outbox / ".busy.op7.result.csv.abc.partial",
        reports / ".occupancy-20261203T0800Z-op9.csv.abc.partial",  # a report run at work (no input)
        outbox_dir / ".dashboard.html.partial",  # names no operation and is fresh
        reports / ".census-ICU-op6-latest.csv.1a2b3c4d.partial",  # fresh, where no input is bound
        outbox / "done.op3.result.csv",  # a published file, not a temporary one
    ]
    gone = [
        processing / ".op3.abc.spool",
        outbox / ".done.op3.summary.json.abc.partial",
        outbox / ".done.op3.result.csv.abc.partial.rewrite",
        outbox / ".x.op5.op3.errors.csv.abc.partial",  # a sender's stem holding ".op5."
        archived / ".done.op3.csv.123.partial",  # a copy across filesystems cut short
        outbox / "rejected" / ".bad.op4.csv.123.partial",
        reports / ".occupancy-20261202T0800Z-op8.csv.abc.partial",
        outbox_dir / ".old-latest.csv.1234abcd.partial",
    ]
    for path in kept + gone:
        path.write_text("x")
    an_hour_ago = time.time() - 2 * leftovers.STALE_AFTER_S
    os.utime(outbox_dir / ".old-latest.csv.1234abcd.partial", (an_hour_ago, an_hour_ago))
    old_report = reports / ".occupancy-20261202T0800Z-op8.csv.abc.partial"
    os.utime(old_report, (an_hour_ago, an_hour_ago))  # where no input is bound, only old files go
    asked: list[list[int]] = []

    def unfinished(ids: list[int]) -> set[int]:
        asked.append(ids)
        return {9} & set(ids)

    removed = leftovers.sweep(inbox_dir, outbox_dir, archive_dir, unfinished)
    assert sorted(removed) == sorted(gone)
    assert all(path.exists() for path in kept)
    assert asked == [[3, 4, 6, 8, 9]]
    assert leftovers.sweep(inbox_dir, outbox_dir, archive_dir, unfinished) == []


def test_relative_folders_are_compared_as_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped configuration names its folders relatively ("outbox"): a refused permission there is
    still the host's fault."""
    from processor.pipeline.context import Pipeline
    from processor.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(inbox_dir=Path("inbox"), outbox_dir=Path("outbox"), archive_dir=Path("archive"))
    areas = Pipeline(settings, engine=None, clock=lambda: None).host_areas  # type: ignore[arg-type]
    refused = PermissionError(errno.EACCES, "Permission denied", "outbox/import_patients/.a.partial")
    assert disposition_of(refused, areas) is Disposition.WAIT


def test_a_pause_for_room_ends_when_the_file_that_did_not_fit_is_gone(
    areas: HostAreas, tmp_path: Path
) -> None:
    clock = FakeMonotonic()
    pause = HostPause(areas, "tok", reserve_bytes=0, monotonic=clock)
    waiting = tmp_path / "huge.csv"
    waiting.write_text("x")
    shortage = shortage_for(10**15, areas, reserve=0)
    assert shortage is not None
    pause.no_room(shortage, waiting, 10**15, "huge.csv")
    clock.now = pause.next_check_at or 0
    assert not pause.may_go_on()  # still far too big
    waiting.unlink()  # its sender took it back
    clock.now = pause.next_check_at or 0
    assert pause.may_go_on()


def test_a_requests_validate_folder_is_not_taken(tmp_path: Path) -> None:
    """A trigger's content is never read: there is nothing to try, and a file there is left alone."""
    from processor.adapters.inbox import inbox_file_of, scan

    folder = tmp_path / "export_patients" / "validate"
    folder.mkdir(parents=True)
    (folder / "x.csv").write_text("")
    assert list(scan(tmp_path, [OperationType.EXPORT_PATIENTS])) == []
    assert inbox_file_of(tmp_path, folder / "x.csv") is None

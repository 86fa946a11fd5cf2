"""The watcher reports renames into a folder as such, and wakes the loop; the publisher publishes in order."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from processor.adapters.watcher import Sighting, start_watching
from processor.daemon import Publisher

WAIT_S = 10.0  # how long to wait for an event before failing (not a timing requirement)


class Watched:
    """A watched folder, its sightings and how often the watcher woke the loop."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sightings: queue.Queue[Sighting] = queue.Queue()
        self.wakes = threading.Semaphore(0)
        self.observer = start_watching([folder], self.sightings, False, 1.0, wake=self.wakes.release)

    def next_rename_in(self) -> Sighting:
        """The next sighting of a file renamed into the folder (others are skipped)."""
        while True:
            sighting = self.sightings.get(timeout=WAIT_S)
            if sighting.renamed_in:
                return sighting

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)


@pytest.fixture
def watched(tmp_path: Path) -> Any:
    folder = tmp_path / "inbox"
    folder.mkdir()
    watched = Watched(folder)
    yield watched
    watched.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")
def test_a_file_renamed_from_tmp_is_seen_as_renamed_in_and_wakes_the_loop(watched: Watched) -> None:
    staged = watched.folder / "a.csv.tmp"
    staged.write_text("x")
    os.rename(staged, watched.folder / "a.csv")
    assert watched.next_rename_in() == Sighting(watched.folder / "a.csv", renamed_in=True)
    assert watched.wakes.acquire(timeout=WAIT_S)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")
def test_a_file_moved_in_from_an_unwatched_folder_is_renamed_in(watched: Watched, tmp_path: Path) -> None:
    elsewhere = tmp_path / "staging.csv"
    elsewhere.write_text("x")
    os.rename(elsewhere, watched.folder / "b.csv")
    assert watched.next_rename_in() == Sighting(watched.folder / "b.csv", renamed_in=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")
def test_files_claimed_out_of_the_folder_do_not_hold_back_later_ones(
    watched: Watched, tmp_path: Path
) -> None:
    """Moving files out (as a claim does) yields no sighting, and renames after it are still reported."""
    elsewhere = tmp_path / "processing"
    elsewhere.mkdir()
    for number in range(3):
        (watched.folder / f"{number}.csv.tmp").write_text("x")
        os.rename(watched.folder / f"{number}.csv.tmp", watched.folder / f"{number}.csv")
        assert watched.next_rename_in().path.name == f"{number}.csv"
        os.rename(watched.folder / f"{number}.csv", elsewhere / f"{number}.csv")
    (watched.folder / "last.csv.tmp").write_text("x")
    os.rename(watched.folder / "last.csv.tmp", watched.folder / "last.csv")
    assert watched.next_rename_in().path.name == "last.csv"
    leftovers = []
    while not watched.sightings.empty():
        leftovers.append(watched.sightings.get())
    assert all(sighting.path.parent == watched.folder for sighting in leftovers)


def decided(operation_id: int) -> Any:
    """Enough of a ``Decided`` for the publisher (it only hands them on, and names them in its log)."""
    return SimpleNamespace(job=SimpleNamespace(operation_id=operation_id))


class RecordingPublish:
    """A stand-in for ``publish_all``: records batches' ids; the first call waits until it is released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.first_started = threading.Event()
        self.release_first = threading.Event()
        self.fail_on: int | None = None

    def __call__(self, batch: list[Any]) -> None:
        if not self.batches:
            self.first_started.set()
            self.release_first.wait(WAIT_S)
        ids = [item.job.operation_id for item in batch]
        self.batches.append(ids)
        if self.fail_on in ids:
            raise OSError("disk full")


def test_the_publisher_keeps_commit_order_and_batches_what_queued_meanwhile() -> None:
    publish = RecordingPublish()
    publisher = Publisher(publish)
    publisher.submit(decided(1))
    assert publish.first_started.wait(WAIT_S)
    for operation_id in (2, 3, 4):
        publisher.submit(decided(operation_id))
    publish.release_first.set()
    publisher.drain()
    assert publish.batches == [[1], [2, 3, 4]]
    publisher.submit(decided(5))
    publisher.close()  # publishes what is left before the thread ends
    assert publish.batches[-1] == [5]


def test_a_failed_batch_is_logged_and_the_publisher_goes_on() -> None:
    publish = RecordingPublish()
    publish.release_first.set()
    publish.fail_on = 1
    publisher = Publisher(publish)
    publisher.submit(decided(1))
    publisher.drain()
    publisher.submit(decided(2))
    publisher.close()
    assert publish.batches == [[1], [2]]


def test_a_paced_publisher_gathers_the_files_committed_within_its_interval() -> None:
    """With ``every_s``, files that follow a published batch closely wait for the interval and go out
    together (one round of directory fsyncs for all); a file after a quiet spell goes out at once."""
    publish = RecordingPublish()
    publisher = Publisher(publish, every_s=0.3)
    publisher.submit(decided(1))
    assert publish.first_started.wait(WAIT_S)
    published_first = time.monotonic()
    for operation_id in (2, 3, 4):
        publisher.submit(decided(operation_id))
    publish.release_first.set()
    while len(publish.batches) < 2:
        time.sleep(0.01)
    assert time.monotonic() - published_first >= 0.25
    assert publish.batches == [[1], [2, 3, 4]]
    time.sleep(0.35)  # quiet for longer than the interval
    asked = time.monotonic()
    publisher.submit(decided(5))
    while len(publish.batches) < 3:
        time.sleep(0.005)
    assert time.monotonic() - asked < 0.2
    publisher.close()


def test_drain_and_close_do_not_wait_for_the_publishers_interval() -> None:
    """Whoever waits for the files to be published (recovery, a stop) has them at once."""
    publish = RecordingPublish()
    publish.release_first.set()
    publisher = Publisher(publish, every_s=30.0)
    publisher.submit(decided(1))
    publisher.submit(decided(2))
    started = time.monotonic()
    publisher.drain()
    assert [i for batch in publish.batches for i in batch] == [1, 2]
    publisher.submit(decided(3))
    publisher.close()
    assert publish.batches[-1] == [3]
    assert time.monotonic() - started < 5

"""The host's storage as wardbulk needs it (issue 18): where it writes, whether a file fits there, and
whether it can write there now.

A full disk, a quota, a read-only remount or a lost share is the host's fault, never the file's: the
daemon pauses (``pipeline.pause``) and uses these to know when to go on.
"""

from __future__ import annotations

import os
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
PROBE_BYTES = 64 * 1024  # enough to need a new block on any filesystem with room left in the last one


@dataclass(frozen=True)
class HostAreas:
    """Where wardbulk writes its own files: the outbox, the archive, and in the processing area its
    hidden temporary files (spools). A claimed input there is the sender's file, not wardbulk's."""

    outbox: Path
    archive: Path
    processing: Path

    def written_by_wardbulk(self, path: Path) -> bool:
        """Whether ``path`` lies where wardbulk writes (see the class)."""
        if path.is_relative_to(self.outbox) or path.is_relative_to(self.archive):
            return True
        return path.is_relative_to(self.processing) and path.name.startswith(".")

    def named(self) -> list[tuple[str, Path]]:
        """(area name, folder), in the order a file uses them."""
        return [("processing", self.processing), ("outbox", self.outbox), ("archive", self.archive)]


NO_AREAS = HostAreas(
    Path("/nonexistent/outbox"), Path("/nonexistent/archive"), Path("/nonexistent/processing")
)


@dataclass(frozen=True)
class Shortage:
    """Not enough room: ``area``'s filesystem (at ``path``) has ``free`` bytes, a file needs ``needed``."""

    area: str
    path: Path
    needed: int
    free: int


def _existing(folder: Path) -> Path:
    """``folder``, or its nearest ancestor that exists (an area is created on its first use)."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def free_bytes(folder: Path) -> int:
    """The bytes an unprivileged writer may still use on ``folder``'s filesystem."""
    status = os.statvfs(_existing(folder))
    return status.f_bavail * status.f_frsize


def bytes_needed(size: int, areas: HostAreas, reserve: int) -> dict[str, int]:
    """What a file of ``size`` bytes needs in each area, the ``reserve`` left free besides: its spool in
    the processing area (at most about its size); result.csv and errors.csv in the outbox (together at
    most about twice its size); its move to the archive, a copy only across filesystems."""
    processing_device = os.stat(_existing(areas.processing)).st_dev
    archive_copy = size if os.stat(_existing(areas.archive)).st_dev != processing_device else 0
    return {"processing": size + reserve, "outbox": 2 * size + reserve, "archive": archive_copy + reserve}


def shortage_for(size: int, areas: HostAreas, reserve: int) -> Shortage | None:
    """The first area whose filesystem lacks room for a file of ``size`` bytes, or None when it fits.
    Areas that share a filesystem add up their needs there (one reserve for them all)."""
    needs = bytes_needed(size, areas, reserve)
    by_device: dict[int, list[tuple[str, Path]]] = defaultdict(list)
    for area, folder in areas.named():
        by_device[os.stat(_existing(folder)).st_dev].append((area, folder))
    for sharing in by_device.values():
        needed = sum(needs[area] for area, _ in sharing) - reserve * (len(sharing) - 1)
        area, folder = sharing[0]
        free = free_bytes(folder)
        if free < needed:
            return Shortage(" and ".join(name for name, _ in sharing), folder, needed, free)
    return None


@dataclass(frozen=True)
class Unwritable:
    """``area`` (at ``path``) cannot take a write now: ``error`` says why."""

    area: str
    path: Path
    error: OSError


def probe(areas: HostAreas, owner_token: str) -> Unwritable | None:
    """Write, fsync and remove a small hidden file in each area; the first area that refuses, or None
    when all of them can be written now."""
    for area, folder in areas.named():
        path = folder / f".wardbulk-probe.{owner_token}.partial"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(descriptor, bytes(PROBE_BYTES))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            path.unlink()
        except OSError as exc:
            with suppress(OSError):
                path.unlink()
            return Unwritable(area, folder, exc)
    return None

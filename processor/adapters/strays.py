"""Strays: entries of the inbox that no operation will ever take, because they are not in an operation's
folder (a mistyped folder such as ``inbox/import_patient/``, or a file dropped in the inbox root).

They are never applied. They are reported instead of being ignored forever: the daemon logs each once
(its escaped name, never its content), writes a note for each stray file into ``outbox/unknown/`` saying
which folders exist, and the dashboard lists them. Hidden entries (``.processing/``, ``.refused/``) and
the names every inbox ignores (``*.tmp``, ``~$*``, …) are not strays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from processor.adapters.folders import UNKNOWN_FOLDER
from processor.adapters.inbox import is_ignored
from processor.adapters.outbox import write_atomically
from processor.core.names import display_name, outbox_stem


@dataclass(frozen=True)
class Stray:
    """An entry outside the operation folders: where it is (escaped, relative to the inbox)."""

    path: Path
    relative: str
    is_folder: bool


def find_strays(inbox_dir: Path, operation_names: tuple[str, ...]) -> list[Stray]:
    """The strays of the inbox now: unknown folders, the files in them, and files in the root."""
    strays = []
    for entry in _listing(inbox_dir):
        if is_ignored(entry.name) or entry.name in operation_names:
            continue
        is_folder = entry.is_dir(follow_symlinks=False)
        strays.append(
            Stray(Path(entry.path), display_name(entry.name) + ("/" if is_folder else ""), is_folder)
        )
        if is_folder:
            strays += [
                Stray(Path(inner.path), f"{display_name(entry.name)}/{display_name(inner.name)}", False)
                for inner in _listing(Path(entry.path))
                if not is_ignored(inner.name) and not inner.is_dir(follow_symlinks=False)
            ]
    return strays


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError:
        return []  # gone or unreadable now: the next look tries again


def write_note(
    outbox_dir: Path, stray: Stray, operation_names: tuple[str, ...], now: datetime
) -> Path | None:
    """``outbox/unknown/<name>.unknown.json`` for a stray file, unless it is there already (one note per
    name); None for a folder (its files get notes)."""
    if stray.is_folder:
        return None
    # The whole name, extension included (``x.csv`` and ``x.txt`` get a note each), made safe and short
    # by ``outbox_stem``, which drops only the last suffix: here a placeholder one.
    flat = stray.relative.replace("/", "__")
    note = outbox_dir / UNKNOWN_FOLDER / f"{outbox_stem(flat + '.note')}.unknown.json"
    if note.exists():
        return None
    folders = [f"inbox/{name}/" for name in operation_names]
    write_atomically(
        note,
        {
            "entry": f"inbox/{stray.relative}",
            "found_at": now.isoformat(),
            "applied": False,
            "reason": "not in an operation's folder: wardbulk takes files only from the folders below",
            "operation_folders": folders,
        },
    )
    return note

"""Temporary files that no process will finish (issue 18: "leave nothing behind").

wardbulk writes every file of its own under a hidden temporary name first: a spool in the processing area
(``.op<N>.<owner>.spool``), outbox partials (``.<stem>.op<N>.<kind>.<owner>.partial``, a result being
rewritten, a report ``.<name>-op<N>.csv.<owner>.partial``), a move across filesystems into the archive or
beside a rejected file's report. A process killed at any step leaves some behind. This finds them:

- one that names an operation (``op<N>``) is a leftover once that operation is not at work: its input is
  no longer bound in the processing area (the operation was published) and, for a report, which has no
  input, the database does not list it as pending or processing;
- one that names none (a dashboard, a ``-latest`` copy, a probe) is a leftover after an hour untouched;
- where no input is bound (``outbox/reports/`` and the outbox itself: reports, their ``-latest`` copies,
  the dashboard), a file written in the last ``RECENT_S`` is kept whatever it names: a report run has
  no input to tell that it is at work, and a ward's name may look like an ``op<N>`` tag.

The candidates are listed before what is at work is read, so that an operation that starts in between
(its temporary files come after its binding) is never mistaken for a finished one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from processor.adapters.folders import REJECTED_FOLDER, REPORTS_FOLDER
from processor.adapters.inbox import bound_operation_ids, processing_folder
from processor.core.operation_kinds import OperationType

STALE_AFTER_S = 3600.0
RECENT_S = 600.0
OPERATION_IN_NAME = re.compile(r"[.-]op(\d+)(?=[.-])")
TEMPORARY = re.compile(r"\.(partial|spool)(\.|$)")


@dataclass(frozen=True)
class Leftover:
    """A temporary file of wardbulk's, and the operation it belongs to (None: it names none);
    ``unbound``: it lies where no input is bound (see the module)."""

    path: Path
    operation_id: int | None
    unbound: bool = False


def _temporaries(folder: Path, unbound: bool) -> Iterator[Leftover]:
    """The hidden temporary files in ``folder`` (one listing, no stat: an outbox folder holds a month of
    files). A sender's stem may itself hold ``.op5.``: wardbulk's own ``op<N>`` is the last one."""
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if entry.name.startswith(".") and entry.is_file()]
    except OSError:  # missing, or unreadable now: nothing to sweep there
        return
    for name in names:
        if TEMPORARY.search(name):
            operations = OPERATION_IN_NAME.findall(name)
            yield Leftover(folder / name, int(operations[-1]) if operations else None, unbound)


def _folders(inbox_dir: Path, outbox_dir: Path, archive_dir: Path) -> Iterator[tuple[Path, bool]]:
    """The folders with wardbulk's temporary files, and whether no input is bound to what is there."""
    for operation_type in OperationType:
        yield processing_folder(inbox_dir, operation_type), False
        yield outbox_dir / operation_type.value, False
        yield outbox_dir / operation_type.value / REJECTED_FOLDER, False
        archived = archive_dir / operation_type.value
        if archived.is_dir():
            yield from ((path, False) for path in sorted(archived.iterdir()) if path.is_dir())
    yield outbox_dir / REPORTS_FOLDER, True
    yield outbox_dir, True


def sweep(
    inbox_dir: Path,
    outbox_dir: Path,
    archive_dir: Path,
    unfinished: Callable[[list[int]], set[int]],
) -> list[Path]:
    """Remove the leftovers (see the module); returns what was removed. ``unfinished`` says which of the
    given operations the database lists as pending or processing."""
    folders = _folders(inbox_dir, outbox_dir, archive_dir)
    candidates = [found for folder, unbound in folders for found in _temporaries(folder, unbound)]
    if not candidates:
        return []
    at_work = set(bound_operation_ids(inbox_dir))
    named = sorted({found.operation_id for found in candidates if found.operation_id is not None} - at_work)
    at_work |= unfinished(named) if named else set()
    now = time.time()
    removed = []
    for found in candidates:
        if found.operation_id in at_work or _kept_for_its_age(found, now):
            continue
        try:
            found.path.unlink()
        except FileNotFoundError:
            continue  # its owner finished with it meanwhile
        removed.append(found.path)
    return removed


def _kept_for_its_age(found: Leftover, now: float) -> bool:
    if found.operation_id is None:
        return not _older(found.path, now - STALE_AFTER_S)
    return found.unbound and not _older(found.path, now - RECENT_S)


def _older(path: Path, moment: float) -> bool:
    try:
        return path.lstat().st_mtime < moment
    except OSError:
        return False

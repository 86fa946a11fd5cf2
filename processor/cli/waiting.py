"""``wardbulk ops wait FILE``: a sender's way to its file's summary, without guessing the operation id.

FILE is the path the file was dropped at, ``inbox/<operation>/<name>``. The newest operation id is
read first, then where the file is:

- still in the inbox, or claimed but not registered yet (``inbox/.processing/<op>/new~…__<name>``): the
  summary waited for is that of an operation of that name registered after the start (the file's own);
- neither (claimed and registered in the moment between the drop and the command): that of the newest
  operation of that name and type.

The summary is the one the daemon publishes last, so once it exists the result and errors files exist too.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from processor.adapters.database.models import BulkOperation
from processor.adapters.inbox import PROCESSING_FOLDER
from processor.adapters.outbox import OutboxFiles
from processor.core.names import display_name
from processor.core.operation_kinds import OperationType
from processor.errors import UsageError, WardbulkError

POLL_S = 0.2


class WaitTimedOut(WardbulkError):
    """No summary appeared in time (exit code 1: the sender learns nothing good)."""

    exit_code = 1


def operation_type_of(inbox_dir: Path, file: Path) -> OperationType:
    """The operation whose inbox folder holds FILE; a UsageError when FILE is not in one."""
    folder = file.absolute().parent
    try:
        operation_type = OperationType(folder.name)
    except ValueError:
        operation_type = None
    if operation_type is None or folder.parent.resolve() != inbox_dir.resolve():
        raise UsageError(f"{file} is not in an operation folder of the inbox ({inbox_dir}/<operation>/)")
    return operation_type


def wait_for_summary(
    engine: Engine,
    inbox_dir: Path,
    outbox_dir: Path,
    file: Path,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The summary of FILE's operation (see the module's docstring), once published."""
    operation_type = operation_type_of(inbox_dir, file)
    name = display_name(file.name)
    newest = _newest_id(engine)  # before looking at the file: a claim registered meanwhile is above it
    pending = os.path.lexists(file) or _claimed_unregistered(inbox_dir, operation_type, file.name)
    after = newest if pending else None
    deadline = clock() + timeout_s
    while True:
        operation_id = _newest_named(engine, operation_type, name, after)
        if operation_id is not None:
            summary = OutboxFiles.for_operation(outbox_dir, operation_type, name, operation_id, "")
            path = summary.final("summary.json")
            if path.is_file():
                return dict(json.loads(path.read_text(encoding="utf-8")))
        if clock() >= deadline:
            raise WaitTimedOut(f"no summary for {file} after {timeout_s:g} s (is the daemon running?)")
        time.sleep(POLL_S)


def _claimed_unregistered(inbox_dir: Path, operation_type: OperationType, name: str) -> bool:
    """Whether a daemon has claimed a file of this name and not registered it yet (its claimed copy is
    ``new~<owner>~<random>__<name>`` until its operation exists; see ``inbox.claim_name``)."""
    folder = inbox_dir / PROCESSING_FOLDER / operation_type.value
    try:
        return any(entry.startswith("new~") and entry.endswith(f"__{name}") for entry in os.listdir(folder))
    except OSError:
        return False


def _newest_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.max(BulkOperation.id), 0))).scalar_one())


def _newest_named(engine: Engine, operation_type: OperationType, name: str, after: int | None) -> int | None:
    """The newest operation of this type and input name (with an id above ``after`` when given)."""
    query = select(func.max(BulkOperation.id)).where(
        BulkOperation.operation_type == operation_type.value, BulkOperation.input_file == name
    )
    if after is not None:
        query = query.where(BulkOperation.id > after)
    with engine.connect() as connection:
        found = connection.execute(query).scalar_one()
    return None if found is None else int(found)

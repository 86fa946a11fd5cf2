"""The implementation of every operation type, found in its room and keyed by its descriptor.

Each operation type has one room, a subpackage of ``processor.operations`` named after it, which exports
either ``OPERATION`` (an ``Operation``: rules, and how its store is built on a connection) or, for a
descriptor whose files are triggers, ``TRIGGER``. The registry imports every room, so adding an operation
type never touches this module; it fails at import, naming the room or the descriptor, when a room has
neither, names a type that has no descriptor, or a descriptor has no room (or a second one).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any, Protocol

from sqlalchemy import Connection

from processor import operations
from processor.adapters.database.unit_of_work import UnitOfWork
from processor.core.operation_kinds import OPERATION_KINDS, OperationKind, OperationType, kind_of
from processor.core.problems import Code
from processor.operations.base import Rules, Trigger


class Operation(Rules, Protocol):
    """An operation type as the pipeline runs it: its rules, and its room's store on a connection.

    ``lookups_on`` builds the store typed as its lookups only (validation, on a plain connection, cannot
    write through it); ``stores_on`` the whole store, on the file's transaction.
    """

    def lookups_on(self, connection: Connection) -> Any:
        """What the run's ``validate`` gets: the room's lookups port."""
        ...

    def stores_on(self, uow: UnitOfWork) -> Any:
        """What the run's ``apply`` gets: the room's store port, inside the unit of work's transaction."""
        ...


def _rooms() -> list[ModuleType]:
    """Every room: each subpackage of ``processor.operations``, imported (with its tables)."""
    return [
        importlib.import_module(f"{operations.__name__}.{room.name}")
        for room in pkgutil.iter_modules(operations.__path__)
        if room.ispkg
    ]


def _implementations() -> tuple[dict[OperationKind, Operation], dict[OperationKind, Trigger]]:
    found_operations: dict[OperationKind, Operation] = {}
    found_triggers: dict[OperationKind, Trigger] = {}
    for room in _rooms():
        implementation = getattr(room, "OPERATION", None) or getattr(room, "TRIGGER", None)
        if implementation is None:
            raise RuntimeError(f"operation room {room.__name__} exports neither OPERATION nor TRIGGER")
        kind = _descriptor_of(room)
        if implementation.operation_type != kind.operation_type:
            raise RuntimeError(f"operation room {room.__name__} implements {implementation.operation_type}")
        found = found_triggers if hasattr(room, "TRIGGER") else found_operations
        found[kind] = implementation
    missing = [kind.name for kind in OPERATION_KINDS if kind not in found_operations | found_triggers]
    if missing:
        raise RuntimeError(f"operation types without a room in processor/operations/: {missing}")
    in_order = {kind: rank for rank, kind in enumerate(OPERATION_KINDS)}  # a hospital's day
    return (
        dict(sorted(found_operations.items(), key=lambda item: in_order[item[0]])),
        dict(sorted(found_triggers.items(), key=lambda item: in_order[item[0]])),
    )


def _descriptor_of(room: ModuleType) -> OperationKind:
    """The descriptor a room is named after."""
    name = room.__name__.rsplit(".", 1)[-1]
    try:
        return kind_of(OperationType(name))
    except ValueError:
        raise RuntimeError(
            f"operation room {room.__name__} has no descriptor in core.operation_kinds"
        ) from None


OPERATIONS, TRIGGERS = _implementations()


def operation_for(operation_type: OperationType) -> Operation | None:
    """The operation that parses and applies files of ``operation_type`` (None for a trigger)."""
    return OPERATIONS.get(kind_of(operation_type))


def trigger_for(operation_type: OperationType) -> Trigger | None:
    """The trigger operation of ``operation_type``, if its files are triggers."""
    return TRIGGERS.get(kind_of(operation_type))


def error_codes() -> frozenset[str]:
    """Every error code wardbulk may write: the shared ones (``core.problems.Code``) and each room's own."""
    own = {code.value for operation in OPERATIONS.values() for code in operation.own_codes}
    return frozenset({code.value for code in Code} | own)


def is_available(operation_type: OperationType) -> bool:
    """Whether this version processes files of ``operation_type``."""
    kind = kind_of(operation_type)
    return kind in OPERATIONS or kind in TRIGGERS

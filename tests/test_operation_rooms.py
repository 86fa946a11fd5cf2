"""Each operation type has one room: adding one touches its descriptor, its room, a migration and the
report queries, and nothing else has to name it.

The footprint test reads the package's source: every identifier, attribute, imported name and string
constant (docstrings aside) of every module, and finds where each operation type is named.
"""

from __future__ import annotations

import ast
import pathlib
import types
from collections.abc import Iterator

import pytest

import processor
from processor.core import operation_kinds
from processor.core.operation_kinds import OPERATION_KINDS, OperationKind
from processor.operations import registry

PACKAGE = pathlib.Path(processor.__file__).parent
WARD_KINDS = [kind for kind in OPERATION_KINDS if not kind.writes_reports]


def names_in(module: pathlib.Path) -> set[str]:
    """The identifiers, attributes, imported names and non-docstring string constants of a module."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    docstrings = {id(first.value) for first in _first_statements(tree) if isinstance(first, ast.Expr)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.alias):
            found.update(node.name.split("."))
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(node.module.split("."))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node.value) not in docstrings
        ):
            found.add(node.value)
    return found


def _first_statements(tree: ast.Module) -> Iterator[ast.stmt]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            yield node.body[0]


def allowed_places(kind: OperationKind) -> list[pathlib.Path]:
    """Where a ward operation type may be named: its room, its descriptor, the migrations, the reports'
    queries."""
    database = PACKAGE / "adapters" / "database"
    return [
        PACKAGE / "operations" / kind.name,
        PACKAGE / "core" / "operation_kinds.py",
        database / "migration_scripts" / "versions",
        PACKAGE / "reports" / "queries",
    ]


@pytest.mark.parametrize("kind", WARD_KINDS, ids=lambda kind: kind.name)
def test_a_ward_operation_is_named_only_in_its_room_descriptor_migrations_and_report_queries(
    kind: OperationKind,
) -> None:
    """Its folder name and its enum member appear nowhere else in the package: the pipeline, daemon,
    settings, models, unit of work and registry work from the descriptors alone."""
    words = {kind.name, kind.operation_type.name}
    allowed = allowed_places(kind)
    outside = [
        str(module.relative_to(PACKAGE))
        for module in PACKAGE.rglob("*.py")
        if words & names_in(module) and not any(module.is_relative_to(place) for place in allowed)
    ]
    assert outside == []


def test_the_footprint_check_sees_a_name_outside_the_room(tmp_path: pathlib.Path) -> None:
    """The check above can fail: a module naming a type in code (not in its docstring) is found."""
    module = tmp_path / "daemon.py"
    module.write_text(
        '"""transfer_patients in a docstring is fine."""\nif t == "transfer_patients":\n    pass\n'
    )
    assert "transfer_patients" in names_in(module)
    module.write_text('"""transfer_patients in a docstring is fine."""\n')
    assert "transfer_patients" not in names_in(module)


def test_every_descriptor_has_one_room_found_by_the_registry() -> None:
    found = {kind.name: kind in registry.OPERATIONS or kind in registry.TRIGGERS for kind in OPERATION_KINDS}
    assert found == dict.fromkeys(found, True)
    assert list(registry.OPERATIONS) == [kind for kind in OPERATION_KINDS if kind in registry.OPERATIONS]


def test_a_descriptor_without_a_room_stops_the_registry_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    rooms = [room for room in registry._rooms() if not room.__name__.endswith(".transfer_patients")]
    monkeypatch.setattr(registry, "_rooms", lambda: rooms)
    with pytest.raises(
        RuntimeError, match=r"without a room in processor/operations/: \['transfer_patients'\]"
    ):
        registry._implementations()


def test_a_room_without_a_descriptor_stops_the_registry_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    stray = types.ModuleType("processor.operations.bed_cleaning")
    stray.OPERATION = registry.OPERATIONS[operation_kinds.SYNC_BEDS]  # type: ignore[attr-defined]
    rooms = [*registry._rooms(), stray]
    monkeypatch.setattr(registry, "_rooms", lambda: rooms)
    with pytest.raises(RuntimeError, match="bed_cleaning has no descriptor"):
        registry._implementations()


def test_a_room_that_exports_nothing_stops_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = types.ModuleType("processor.operations.sync_beds")
    rooms = [room for room in registry._rooms() if not room.__name__.endswith(".sync_beds")]
    monkeypatch.setattr(registry, "_rooms", lambda: [*rooms, empty])
    with pytest.raises(RuntimeError, match="sync_beds exports neither OPERATION nor TRIGGER"):
        registry._implementations()


def test_an_enum_member_without_a_descriptor_stops_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """The enum stays literal for mypy; an import-time check keeps it equal to the descriptors."""
    monkeypatch.setattr(operation_kinds, "OPERATION_KINDS", OPERATION_KINDS[:-1])
    with pytest.raises(RuntimeError, match="differs from OPERATION_KINDS"):
        operation_kinds._check_members()

"""One descriptor per operation type: the enum, the tie order, the formats, the settings tables, the
folders and the implementations are all derived from (or checked against) ``OPERATION_KINDS``.

The migrated database's CHECK constraint is compared with the descriptors in test_check_constraints.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from processor.adapters.folders import required_folders
from processor.adapters.inbox import scan
from processor.core.operation_kinds import (
    OPERATION_KINDS,
    OPERATION_NAMES,
    REPORT_WRITERS,
    TRIGGER_TYPES,
    Effect,
    OperationType,
    format_of,
    kind_of,
    rank_of,
)
from processor.operations.registry import OPERATIONS, TRIGGERS, is_available, operation_for, trigger_for
from processor.settings import OperationSettings, OperationsSettings

HOSPITAL_DAY = [
    OperationType.SYNC_BEDS,
    OperationType.IMPORT_PATIENTS,
    OperationType.BULK_ASSIGNMENT,
    OperationType.TRANSFER_PATIENTS,
    OperationType.BULK_DISCHARGE,
    OperationType.EXPORT_REPORT,
    OperationType.EXPORT_PATIENTS,
]


# --- the enum and the descriptors --------------------------------------------------------------------


def test_the_enum_has_one_member_per_descriptor_in_the_same_order() -> None:
    """An OperationType member without a descriptor, or a descriptor without a member, fails here."""
    assert [kind.operation_type for kind in OPERATION_KINDS] == list(OperationType)
    assert [kind.name for kind in OPERATION_KINDS] == [member.value for member in OperationType]
    assert list(OPERATION_NAMES) == [member.value for member in OperationType]


def test_each_type_has_its_own_descriptor() -> None:
    """kind_of finds the descriptor of every type, and no two types share one."""
    assert [kind_of(operation_type) for operation_type in OperationType] == list(OPERATION_KINDS)
    assert len(set(OPERATION_KINDS)) == len(OPERATION_KINDS)


# --- tie order ---------------------------------------------------------------------------------------


def test_the_tie_order_is_a_hospitals_day() -> None:
    """Beds, then patients, then their admissions, their transfers, then discharges, then the exports
    (README)."""
    assert sorted(OperationType, key=rank_of) == HOSPITAL_DAY
    assert [rank_of(operation_type) for operation_type in HOSPITAL_DAY] == list(range(len(HOSPITAL_DAY)))


def test_files_with_equal_modification_times_are_scanned_in_the_tie_order(tmp_path: Path) -> None:
    """A file per type, dropped in reverse order with one modification time, is listed beds first."""
    inbox_dir = tmp_path / "inbox"
    for operation_type in reversed(HOSPITAL_DAY):
        path = inbox_dir / operation_type.value / "same.csv"
        path.parent.mkdir(parents=True)
        path.write_text("x\n", encoding="utf-8")
        os.utime(path, (1_000_000_000, 1_000_000_000))
    found = list(scan(inbox_dir, list(reversed(HOSPITAL_DAY))))
    assert [inbox_file.operation_type for inbox_file in found] == HOSPITAL_DAY


# --- what each type is -------------------------------------------------------------------------------


def test_the_exports_write_reports_and_export_patients_files_are_triggers() -> None:
    """Pipeline and recovery look for report partials of REPORT_WRITERS; TRIGGER_TYPES' content is ignored."""
    assert set(REPORT_WRITERS) == {OperationType.EXPORT_REPORT, OperationType.EXPORT_PATIENTS}
    assert set(TRIGGER_TYPES) == {OperationType.EXPORT_PATIENTS}


def test_each_type_declares_what_it_does_to_beds_stays_and_patients() -> None:
    """The effects reports rely on: sync_beds registers beds, import_patients patients, an assignment
    admits, a transfer transfers, a discharge discharges, and the exports change nothing of the ward."""
    assert {kind.name: kind.effect for kind in OPERATION_KINDS} == {
        "sync_beds": Effect.REGISTERS_BEDS,
        "import_patients": Effect.REGISTERS_PATIENTS,
        "bulk_assignment": Effect.ADMITS,
        "transfer_patients": Effect.TRANSFERS,
        "bulk_discharge": Effect.DISCHARGES,
        "export_report": Effect.NONE,
        "export_patients": Effect.NONE,
    }


def test_a_trigger_reads_no_columns() -> None:
    """A trigger's content is ignored, so its format has no column and its template no example row."""
    for kind in OPERATION_KINDS:
        if kind.is_trigger:
            assert (kind.format.columns, kind.format.example) == ((), {})


def test_format_of_is_the_descriptors_format_and_every_example_fills_known_columns() -> None:
    """``format_of`` reads the descriptor; the example
    rows printed by ``wardbulk template`` name only the format's columns and fill the required ones."""
    for kind in OPERATION_KINDS:
        assert format_of(kind.operation_type) is kind.format
        assert set(kind.format.example) <= set(kind.format.columns)
        assert all(kind.format.example[column] for column in kind.format.spec.required)


# --- what is derived from the descriptors -------------------------------------------------------------


def test_the_settings_have_one_table_per_descriptor_and_refuse_any_other() -> None:
    """``[operations.<name>]`` exists for every descriptor, defaults when absent; an unknown table is an error."""
    assert list(OperationsSettings.model_fields) == list(OPERATION_NAMES)
    defaults = OperationsSettings()
    assert all(defaults.for_type(t) == OperationSettings() for t in OperationType)
    with pytest.raises(ValidationError, match="swap_patients"):
        OperationsSettings.model_validate({"swap_patients": {}})


def test_the_settings_tables_are_frozen() -> None:
    """The configuration of a running process does not change under it."""
    with pytest.raises(ValidationError):
        OperationsSettings().sync_beds = OperationSettings()  # type: ignore[attr-defined]


def test_every_descriptor_has_an_inbox_and_an_outbox_folder(tmp_path: Path) -> None:
    """``wardbulk init`` creates inbox/<name>/ and outbox/<name>/ for every descriptor."""
    folders = set(required_folders(tmp_path / "in", tmp_path / "out", tmp_path / "archive"))
    for kind in OPERATION_KINDS:
        assert {tmp_path / "in" / kind.name, tmp_path / "out" / kind.name} <= folders


# --- implementations ---------------------------------------------------------------------------------


def test_every_descriptor_has_exactly_one_implementation_and_every_implementation_a_descriptor() -> None:
    """An operation parses and applies files; a trigger (and only a trigger) stands for a trigger type."""
    assert not set(OPERATIONS) & set(TRIGGERS)
    assert set(OPERATIONS) | set(TRIGGERS) == set(OPERATION_KINDS)
    assert {kind for kind in OPERATION_KINDS if kind.is_trigger} == set(TRIGGERS)


def test_each_implementation_is_of_its_descriptors_type_and_reads_its_columns() -> None:
    """The registry's key and the implementation agree on the type; an operation reads the format's columns."""
    for kind, operation in OPERATIONS.items():
        assert (operation.operation_type, operation.spec) == (kind.operation_type, kind.format.spec)
    for kind, trigger in TRIGGERS.items():
        assert trigger.operation_type == kind.operation_type


def test_the_registry_answers_by_operation_type() -> None:
    """Every type is available, as an operation or, for a trigger type, as a trigger."""
    for operation_type in OperationType:
        assert is_available(operation_type)
        is_trigger = operation_type in TRIGGER_TYPES
        assert (operation_for(operation_type) is None, trigger_for(operation_type) is None) == (
            is_trigger,
            not is_trigger,
        )

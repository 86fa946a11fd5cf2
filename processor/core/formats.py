"""The CSV format of every operation type: its columns (see DESIGN.md) and one example row.

The example rows work against the demo data of ``wardbulk init --demo``; ``wardbulk template OP`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.core.csv_reading import ColumnSpec
from processor.core.operation_types import OperationType


@dataclass(frozen=True)
class CsvFormat:
    """The columns an operation reads and an example row."""

    spec: ColumnSpec
    example: dict[str, str]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.spec.known


FORMATS: dict[OperationType, CsvFormat] = {
    OperationType.IMPORT_PATIENTS: CsvFormat(
        ColumnSpec(
            required=("first_name", "last_name", "email"),
            optional=(
                "patient_id",
                "phone",
                "date_of_birth",
                "gender",
                "caregiver_name",
                "caregiver_email",
                "caregiver_phone",
            ),
        ),
        {
            "first_name": "Jane",
            "last_name": "Doe",
            "email": "jane.doe@example.org",
            "patient_id": "000123",
            "phone": "555-0101",
            "date_of_birth": "1980-05-15",
            "gender": "F",
            "caregiver_name": "John Doe",
            "caregiver_email": "john.doe@example.org",
            "caregiver_phone": "555-0102",
        },
    ),
    OperationType.BULK_ASSIGNMENT: CsvFormat(
        ColumnSpec(
            required=("patient_id", "bed_id", "reason"),
            optional=("chief_complaint", "admission_date", "notify"),
        ),
        {
            "patient_id": "000123",
            "bed_id": "CARD-01",
            "reason": "Emergency",
            "chief_complaint": "Chest pain",
            "admission_date": "",
            "notify": "yes",
        },
    ),
    OperationType.BULK_DISCHARGE: CsvFormat(
        ColumnSpec(
            required=("patient_id",),
            optional=("discharge_notes", "discharge_status", "discharge_date", "notify"),
        ),
        {
            "patient_id": "000123",
            "discharge_notes": "Stable, follow up in 2 weeks",
            "discharge_status": "recovered",
            "discharge_date": "",
            "notify": "yes",
        },
    ),
    OperationType.SYNC_BEDS: CsvFormat(
        ColumnSpec(required=("ward", "bed_id"), optional=("bed_number", "ward_name", "status")),
        {
            "ward": "CARD",
            "bed_id": "CARD-11",
            "bed_number": "11",
            "ward_name": "Cardiology",
            "status": "available",
        },
    ),
    OperationType.EXPORT_REPORT: CsvFormat(
        ColumnSpec(required=("report_type",), optional=("start_date", "end_date", "ward")),
        {"report_type": "occupancy", "start_date": "", "end_date": "", "ward": "CARD"},
    ),
    OperationType.EXPORT_PATIENTS: CsvFormat(ColumnSpec(required=()), {}),
}


def format_of(operation_type: OperationType) -> CsvFormat:
    """The CSV format of ``operation_type``."""
    return FORMATS[operation_type]

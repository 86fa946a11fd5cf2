"""One descriptor per operation type: everything wardbulk knows about a type, in one place.

``OPERATION_KINDS`` is the one list of operation types, in the order of a hospital's day. What other
layers need is derived from it, never listed beside it: the inbox and outbox folders, the
``[operations.<name>]`` settings tables, the order of files with equal modification times
(``rank_of``), the CSV formats (``format_of``), which types write reports (``REPORT_WRITERS``) and whose
files are triggers (``TRIGGER_TYPES``), the caregiver notification kinds (``CARE_EVENTS``), and the
database CHECK constraints on ``bulk_operations.operation_type`` and ``patient_notifications.kind``.

Adding an operation type takes, besides this file (its ``OperationType`` member and its ``OperationKind``
here), its room ``processor/operations/<name>/`` (rules, ports, SQL, own tables and codes; the registry
finds it), an Alembic migration that widens the CHECK constraints, and, if it changes what reports read,
the report queries. A test fails until each is done.

The example rows work against the demo data of ``wardbulk init --demo``; ``wardbulk template OP`` prints
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag, StrEnum, auto

from processor.core.csv_reading import ColumnSpec


class OperationType(StrEnum):
    """One inbox folder per operation type; the value is the folder name and the database value.

    The members mirror ``OPERATION_KINDS`` below, in its order: a hospital's day. They stay literal so
    that mypy sees ``OperationType.SYNC_BEDS``; an import-time check (``_check_members``) fails when the
    two differ.
    """

    SYNC_BEDS = "sync_beds"
    IMPORT_PATIENTS = "import_patients"
    BULK_ASSIGNMENT = "bulk_assignment"
    TRANSFER_PATIENTS = "transfer_patients"
    BULK_DISCHARGE = "bulk_discharge"
    EXPORT_REPORT = "export_report"
    EXPORT_PATIENTS = "export_patients"


@dataclass(frozen=True)
class CsvFormat:
    """The columns an operation reads and an example row."""

    spec: ColumnSpec
    example: dict[str, str]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.spec.known


class Effect(Flag):
    """What an operation's file does to the ward: the rows it writes, which the reports read.

    A report is stale after an operation whose effect touches what it reads: ``occupancy`` reads beds
    (REGISTERS_BEDS, ADMITS, TRANSFERS, DISCHARGES); ``patient_list`` and ``bed_utilization`` read beds
    and stays (the same four); ``admission_discharge`` reads discharges (DISCHARGES; a discharged stay
    moves no more); ``export_patients`` reads patients and their current stay (REGISTERS_PATIENTS,
    ADMITS, TRANSFERS, DISCHARGES).
    """

    NONE = 0
    REGISTERS_BEDS = auto()  # wards and beds created or updated, a bed's maintenance status set
    REGISTERS_PATIENTS = auto()  # user accounts, patients and caregivers created
    ADMITS = auto()  # stays begin: an active admission per row, its bed occupied
    DISCHARGES = auto()  # stays end: a discharge per row, its admission inactive, its bed available
    TRANSFERS = auto()  # stays move: a transfer record per row, the old bed available, the new occupied


# eq=False: there is exactly one descriptor per type, so identity is equality, and the descriptor
# hashes (as a registry key) although its example row is a dict.
@dataclass(frozen=True, eq=False)
class OperationKind:
    """An operation type: its CSV format, what it does to the ward, and how the pipeline treats it.

    Its position in ``OPERATION_KINDS`` is its tie order (see ``rank_of``).
    """

    operation_type: OperationType
    format: CsvFormat
    effect: Effect
    # A trigger's files only ask for something: their content is neither parsed nor de-duplicated.
    is_trigger: bool = False
    # A report writer leaves report files (and their partials) in outbox/reports/ besides its outbox files.
    writes_reports: bool = False
    # The kind of caregiver notification its rows may send ("admission", ...), if any.
    care_event: str | None = None
    # The column by which upsert mode (``mode = "upsert"``) finds the record a row updates; None: the
    # type has no upsert mode. In upsert mode it is the only column the header must have.
    upsert_key: str | None = None

    def spec_for(self, upsert: bool) -> ColumnSpec:
        """The columns a file must and may have: in upsert mode only the key is required (a row
        carries what it changes)."""
        spec = self.format.spec
        if not upsert or self.upsert_key is None:
            return spec
        return ColumnSpec((self.upsert_key,), tuple(c for c in spec.known if c != self.upsert_key))

    @property
    def name(self) -> str:
        """The inbox and outbox folder name, the settings table name and the database value."""
        return self.operation_type.value


SYNC_BEDS = OperationKind(
    OperationType.SYNC_BEDS,
    CsvFormat(
        ColumnSpec(required=("ward", "bed_id"), optional=("bed_number", "ward_name", "status")),
        {
            "ward": "CARD",
            "bed_id": "CARD-11",
            "bed_number": "11",
            "ward_name": "Cardiology",
            "status": "available",
        },
    ),
    Effect.REGISTERS_BEDS,
)

IMPORT_PATIENTS = OperationKind(
    OperationType.IMPORT_PATIENTS,
    CsvFormat(
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
    Effect.REGISTERS_PATIENTS,
    upsert_key="patient_id",
)

BULK_ASSIGNMENT = OperationKind(
    OperationType.BULK_ASSIGNMENT,
    CsvFormat(
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
    Effect.ADMITS,
    care_event="admission",
)

# The example moves the patient that the README's assignment sample admits to CARD-01.
TRANSFER_PATIENTS = OperationKind(
    OperationType.TRANSFER_PATIENTS,
    CsvFormat(
        ColumnSpec(
            required=("patient_id", "to_bed_id", "reason"),
            optional=("transfer_date", "notify"),
        ),
        {
            "patient_id": "000123",
            "to_bed_id": "CARD-02",
            "reason": "Step-down care",
            "transfer_date": "",
            "notify": "yes",
        },
    ),
    Effect.TRANSFERS,
    care_event="transfer",
)

BULK_DISCHARGE = OperationKind(
    OperationType.BULK_DISCHARGE,
    CsvFormat(
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
    Effect.DISCHARGES,
    care_event="discharge",
)

EXPORT_REPORT = OperationKind(
    OperationType.EXPORT_REPORT,
    CsvFormat(
        ColumnSpec(required=("report_type",), optional=("start_date", "end_date", "ward")),
        {"report_type": "occupancy", "start_date": "", "end_date": "", "ward": "CARD"},
    ),
    Effect.NONE,
    writes_reports=True,
)

EXPORT_PATIENTS = OperationKind(
    OperationType.EXPORT_PATIENTS,
    CsvFormat(ColumnSpec(required=()), {}),
    Effect.NONE,
    is_trigger=True,
    writes_reports=True,
)

# A hospital's day: the bed registry, then patients, then their admissions, their transfers to other
# beds, then discharges, then exports.
OPERATION_KINDS: tuple[OperationKind, ...] = (
    SYNC_BEDS,
    IMPORT_PATIENTS,
    BULK_ASSIGNMENT,
    TRANSFER_PATIENTS,
    BULK_DISCHARGE,
    EXPORT_REPORT,
    EXPORT_PATIENTS,
)

_BY_TYPE: dict[OperationType, OperationKind] = {kind.operation_type: kind for kind in OPERATION_KINDS}
_RANK: dict[OperationType, int] = {kind.operation_type: rank for rank, kind in enumerate(OPERATION_KINDS)}

OPERATION_NAMES: tuple[str, ...] = tuple(kind.name for kind in OPERATION_KINDS)
REPORT_WRITERS: frozenset[OperationType] = frozenset(
    kind.operation_type for kind in OPERATION_KINDS if kind.writes_reports
)
TRIGGER_TYPES: frozenset[OperationType] = frozenset(
    kind.operation_type for kind in OPERATION_KINDS if kind.is_trigger
)
CARE_EVENTS: tuple[str, ...] = tuple(kind.care_event for kind in OPERATION_KINDS if kind.care_event)


def _check_members() -> None:
    """The enum and the descriptors name the same types in the same order (checked at import: a type
    added to one and not the other stops every command at once, with this message)."""
    described = [kind.operation_type for kind in OPERATION_KINDS]
    if described != list(OperationType):
        raise RuntimeError(f"OperationType {list(OperationType)} differs from OPERATION_KINDS {described}")


_check_members()


def kind_of(operation_type: OperationType) -> OperationKind:
    """The descriptor of ``operation_type``."""
    return _BY_TYPE[operation_type]


def rank_of(operation_type: OperationType) -> int:
    """Where ``operation_type`` comes in a hospital's day (0 first): files with equal modification
    times are taken in this order, so beds exist before admissions and patients before either."""
    return _RANK[operation_type]


def format_of(operation_type: OperationType) -> CsvFormat:
    """The CSV format of ``operation_type``."""
    return _BY_TYPE[operation_type].format

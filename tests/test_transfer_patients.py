"""transfer_patients end to end on SQLite and PostgreSQL: through the real pipeline and command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from processor.core.operation_kinds import OperationType
from processor.operations.transfer_patients import sql as transfer_sql
from processor.pipeline import process_claimed
from tests.conftest import Database, Workspace, make_workspace, run_cli
from tests.test_review_regressions import claim_in
from tests.test_ward_operations import bed, errors_of, process, with_patients

ADMIT = "patient_id,bed_id,reason,admission_date\n001,CARD-01,r,2026-11-01\n002,CARD-02,r,2026-11-02\n"
HEADER = "patient_id,to_bed_id,reason,transfer_date,notify\n"


def admitted(ws: Workspace) -> Workspace:
    """Patients 001 in CARD-01 (since 1 Nov) and 002 in CARD-02 (since 2 Nov); 003 not admitted."""
    with_patients(ws)
    process(ws, "bulk_assignment", "admit.csv", ADMIT)
    return ws


@pytest.fixture
def ward(workspace: Workspace) -> Workspace:
    return admitted(workspace)


def stay_of(ws: Workspace, mrn: str) -> tuple[Any, ...]:
    """(admission id, is_active, admitted_at day, bed code) of the patient's one admission."""
    with ws.database.engine.connect() as connection:
        return tuple(
            connection.execute(
                text(
                    "SELECT a.id, a.is_active, a.admitted_at, b.code FROM patient_admissions a "
                    "JOIN patients p ON p.id = a.patient_id JOIN ward_beds b ON b.id = a.bed_id "
                    "WHERE p.mrn = :mrn"
                ),
                {"mrn": mrn},
            ).one()
        )


def transfers(ws: Workspace) -> list[tuple[Any, ...]]:
    with ws.database.engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT t.admission_id, f.code, o.code, t.reason, t.bulk_operation_id FROM bed_transfers t "
                    "JOIN ward_beds f ON f.id = t.from_bed_id JOIN ward_beds o ON o.id = t.to_bed_id ORDER BY t.id"
                )
            )
        ]


def test_a_transfer_moves_the_stay_frees_the_old_bed_and_records_the_move(ward: Workspace) -> None:
    """One admission keeps the stay (same row, same admission date); a bed_transfers row keeps the old bed."""
    admission, *_ = stay_of(ward, "001")
    summary, errors = process(
        ward, "transfer_patients", "t.csv", HEADER + "001,SURG-01,Surgery,2026-11-05T08:30:00+01:00,\n"
    )
    assert (summary["status"], summary["successful_records"], errors) == ("completed", 1, [])
    assert bed(ward, "CARD-01") == ("available", None) and bed(ward, "SURG-01") == ("occupied", "001")
    admission_now, active, admitted_at, bed_code = stay_of(ward, "001")
    assert (admission_now, bool(active), str(admitted_at)[:10], bed_code) == (
        admission,
        True,
        "2026-11-01",
        "SURG-01",
    )
    assert transfers(ward) == [(admission, "CARD-01", "SURG-01", "Surgery", summary["operation_id"])]
    assert str(ward.scalar("SELECT transferred_at FROM bed_transfers")).startswith("2026-11-05 07:30")
    assert ward.scalar("SELECT count(*) FROM patient_admissions") == 2


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("999,CARD-03,r,,", ("2", "patient_id", "unknown-patient")),
        ("003,CARD-03,r,,", ("2", "patient_id", "not-admitted")),
        ("001,NOPE-01,r,,", ("2", "to_bed_id", "unknown-bed")),
        ("001,CARD-02,r,,", ("2", "to_bed_id", "bed-not-available")),
        ("001,CARD-10,r,,", ("2", "to_bed_id", "bed-not-available")),
        ("001,CARD-01,r,,", ("2", "to_bed_id", "same-bed")),
        ("001,CARD-03,r,2026-10-31,", ("2", "transfer_date", "transfer-before-admission")),
        ("001,CARD-03,r,2999-01-01,", ("2", "transfer_date", "constraint-error")),
        ("001,CARD-03,,,", ("2", "reason", "constraint-error")),
        ("001,CARD-03,r,soon,", ("2", "transfer_date", "type-error")),
        ("001,CARD-03,r,,perhaps", ("2", "notify", "type-error")),
        ("001,CARD-03", ("2", "reason", "missing-cell")),
    ],
)
def test_a_transfer_row_that_cannot_be_applied_is_an_error_row_and_moves_nothing(
    ward: Workspace, row: str, expected: tuple[str, str, str]
) -> None:
    _, errors = process(ward, "transfer_patients", "t.csv", HEADER + row + "\n")
    assert errors_of(errors) == [expected]
    assert ward.scalar("SELECT count(*) FROM bed_transfers") == 0
    assert bed(ward, "CARD-01") == ("occupied", "001") and stay_of(ward, "001")[3] == "CARD-01"


def test_a_second_row_for_a_patient_or_a_target_bed_fails_against_the_first(ward: Workspace) -> None:
    _, errors = process(
        ward, "transfer_patients", "t.csv", HEADER + "001,CARD-03,r,,\n002,CARD-03,r,,\n001,SURG-01,r,,\n"
    )
    assert [(e["line"], e["code"], e["message"]) for e in errors] == [
        ("3", "bed-not-available", "to_bed_id is the same as line 2"),
        ("4", "constraint-error", "patient_id is the same as line 2"),
    ]
    assert bed(ward, "CARD-03") == ("occupied", "001") and bed(ward, "SURG-01") == ("available", None)


def test_a_second_transfer_of_a_stay_cannot_be_dated_before_the_first(ward: Workspace) -> None:
    process(ward, "transfer_patients", "first.csv", HEADER + "001,CARD-03,r,2026-11-10,\n")
    _, errors = process(ward, "transfer_patients", "second.csv", HEADER + "001,SURG-01,r,2026-11-09,\n")
    assert errors_of(errors) == [("2", "transfer_date", "transfer-before-admission")]
    assert "last transfer" in errors[0]["message"]


def test_a_transferred_patient_is_discharged_from_the_new_bed(ward: Workspace) -> None:
    process(ward, "transfer_patients", "t.csv", HEADER + "001,CARD-03,r,2026-11-10,\n")
    _, errors = process(ward, "bulk_discharge", "d.csv", "patient_id,discharge_date\n001,2026-11-12\n")
    assert errors == []
    assert bed(ward, "CARD-03") == ("available", None) and bed(ward, "CARD-01") == ("available", None)


def test_a_transfer_notifies_caregivers_with_the_new_bed(ward: Workspace) -> None:
    summary, _ = process(ward, "transfer_patients", "t.csv", HEADER + "001,SURG-01,r,,yes\n")
    [notifications] = (ward.outbox / "notifications").glob("t.op*.notifications.csv")
    assert ",transfer,SURG,SURG-01," in notifications.read_text(encoding="utf-8-sig")
    assert summary["notifications"] == 1
    assert ward.scalar("SELECT kind FROM patient_notifications WHERE status = 'queued'") == "transfer"


def test_a_database_failure_in_a_later_chunk_leaves_no_row_of_the_file_applied(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or nothing: the first chunk's move is rolled back with the second's failure."""
    ws = admitted(make_workspace(tmp_path, database, chunk_size=1))
    real = transfer_sql.transfer_stays
    calls: list[int] = []

    def fail_the_second_chunk(*args: Any) -> None:
        calls.append(1)
        if len(calls) % 2 == 0:  # every attempt of the file fails at its second chunk
            raise IntegrityError("UPDATE ward_beds", None, Exception("a constraint said no"))
        real(*args)

    monkeypatch.setattr(transfer_sql, "transfer_stays", fail_the_second_chunk)
    summary, _ = process(ws, "transfer_patients", "t.csv", HEADER + "001,CARD-03,r,,\n002,SURG-01,r,,\n")
    assert (summary["status"], summary["error_code"]) == ("failed", "database-error")
    assert ws.scalar("SELECT count(*) FROM bed_transfers") == 0
    assert bed(ws, "CARD-01") == ("occupied", "001") and bed(ws, "CARD-03") == ("available", None)


def test_a_target_bed_put_into_maintenance_after_validation_gets_nobody(ward: Workspace) -> None:
    """Race-safety: the conditional update sees the bed no longer available (ConcurrentChange); the
    file is validated again, the row fails bed-not-available, and the patient stays where they were."""
    ward.drop("transfer_patients", "t.csv", HEADER + "001,CARD-03,r,,\n002,SURG-01,r,,\n")

    def maintenance(_done: int) -> None:
        with ward.database.engine.begin() as connection:
            connection.execute(text("UPDATE ward_beds SET status = 'maintenance' WHERE code = 'CARD-03'"))

    claimed = claim_in(ward, OperationType.TRANSFER_PATIENTS, "t.csv")
    outcome = process_claimed(ward.pipeline(on_progress=maintenance), claimed)
    assert (outcome.counts.successful, outcome.counts.failed) == (1, 1)
    assert bed(ward, "CARD-03") == ("maintenance", None) and bed(ward, "CARD-01") == ("occupied", "001")
    assert bed(ward, "SURG-01") == ("occupied", "002") and bed(ward, "CARD-02") == ("available", None)
    assert [row[1:3] for row in transfers(ward)] == [("CARD-02", "SURG-01")]


def test_the_template_row_transfers_after_the_readme_assignment_on_demo_data(
    tmp_path: Path, empty_database_url: str
) -> None:
    """`wardbulk template transfer_patients` prints a row that applies after the README's samples."""
    env = {"WARDBULK_DATABASE_URL": empty_database_url, "WARDBULK_STABILITY_WINDOW_S": "0"}
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    inbox = tmp_path / "inbox"
    (inbox / "import_patients" / "p.csv").write_text(
        "first_name,last_name,email,patient_id\nJane,Doe,jane.doe@example.org,000123\n"
    )
    (inbox / "bulk_assignment" / "a.csv").write_text("patient_id,bed_id,reason\n000123,CARD-01,Emergency\n")
    assert run_cli("run", "--once", cwd=tmp_path, env=env).returncode == 0
    template = run_cli("template", "transfer_patients", cwd=tmp_path)
    assert template.stdout.splitlines()[0] == "patient_id,to_bed_id,reason,transfer_date,notify"
    (inbox / "transfer_patients" / "t.csv").write_text(template.stdout)
    assert run_cli("run", "--once", cwd=tmp_path, env=env).returncode == 0
    [summary] = (tmp_path / "outbox" / "transfer_patients").glob("t.op*.summary.json")
    assert '"successful_records": 1' in summary.read_text()
    [report] = (tmp_path / "outbox" / "notifications").glob("t.op*.notifications.csv")
    assert "CARD-02" in report.read_text(encoding="utf-8-sig")

"""The ward operations end to end with the real command line, and two processes racing for the same beds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from processor.adapters.database.engine import build_engine
from tests.conftest import Database, make_workspace, run_cli


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def summary(root: Path, operation: str, stem: str) -> dict[str, object]:
    [path] = (root / "outbox" / operation).glob(f"{stem}.op*.summary.json")
    return dict(json.loads(path.read_text()))


def test_registry_import_assignment_then_discharge_dropped_together(
    tmp_path: Path, empty_database_url: str
) -> None:
    """Dropped at once in that order, each file sees the effects of the ones before it."""
    env = {
        "WARDBULK_DATABASE_URL": empty_database_url,
        "WARDBULK_STABILITY_WINDOW_S": "0",
        "WARDBULK_OPERATIONS__BULK_ASSIGNMENT__NOTIFY": "true",
    }
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    inbox = tmp_path / "inbox"
    (inbox / "sync_beds" / "registry.csv").write_text(
        "ward,bed_id,bed_number,ward_name,status\nICU,ICU-01,1,Intensive Care,\nICU,ICU-02,2,,maintenance\n"
    )
    (inbox / "import_patients" / "patients.csv").write_text(
        "first_name,last_name,email,patient_id,caregiver_name,caregiver_email\n"
        "Ann,Lee,ann@example.org,001,Carl Lee,carl@example.org\nBob,Ray,bob@example.org,002,,\n"
    )
    (inbox / "bulk_assignment" / "admit.csv").write_text(
        "patient_id,bed_id,reason\n001,ICU-01,Emergency\n002,CARD-03,Routine\n002,ICU-02,Routine\n"
    )
    first = run_cli("run", "--once", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr

    assert summary(tmp_path, "sync_beds", "registry")["successful_records"] == 2
    assert summary(tmp_path, "import_patients", "patients")["successful_records"] == 2
    admit = summary(tmp_path, "bulk_assignment", "admit")
    assert (admit["successful_records"], admit["failed_records"], admit["errors_by_code"]) == (
        2,
        1,
        {"already-admitted": 1, "bed-not-available": 1},
    )
    beds = (
        "SELECT b.code, b.status, p.mrn FROM ward_beds b LEFT JOIN patients p ON p.id = b.current_patient_id"
    )
    assert set(query(empty_database_url, beds + " WHERE b.code IN ('ICU-01', 'ICU-02', 'CARD-03')")) == {
        ("ICU-01", "occupied", "001"),
        ("ICU-02", "maintenance", None),
        ("CARD-03", "occupied", "002"),
    }
    [notification] = (tmp_path / "outbox" / "notifications").glob("admit.op*.notifications.csv")
    assert "carl@example.org" in notification.read_text(encoding="utf-8-sig")

    (inbox / "bulk_discharge" / "discharge.csv").write_text(
        "patient_id,discharge_status\n001,recovered\n002,transferred\n"
    )
    second = run_cli("run", "--once", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert summary(tmp_path, "bulk_discharge", "discharge")["successful_records"] == 2
    assert query(empty_database_url, "SELECT count(*) FROM ward_beds WHERE status = 'occupied'") == [(0,)]
    assert query(empty_database_url, "SELECT count(*) FROM patient_admissions WHERE is_active") == [(0,)]
    assert sorted(query(empty_database_url, "SELECT discharge_status FROM patient_discharges")) == [
        ("recovered",),
        ("transferred",),
    ]
    assert query(empty_database_url, "SELECT count(*) FROM bulk_operations WHERE status = 'completed'") == [
        (4,)
    ]
    assert not [p for p in inbox.rglob("*.csv") if ".processing" not in p.parts]


BEDS = 800


def test_two_processes_assigning_the_same_beds_at_once_never_fill_a_bed_twice(
    tmp_path: Path, database: Database
) -> None:
    """Each bed ends with exactly one patient; the loser's rows report bed-not-available."""
    ws = make_workspace(tmp_path, database)
    ws.drop("sync_beds", "race-beds.csv", "ward,bed_id\n" + "".join(f"RACE,R-{i:04d}\n" for i in range(BEDS)))
    ws.drop(
        "import_patients",
        "race-patients.csv",
        "first_name,last_name,email,patient_id\n"
        + "".join(f"P{i},Q{i},p{i}@example.org,{i:05d}\n" for i in range(2 * BEDS)),
    )
    ws.run_once()
    files = []
    for side in (0, 1):
        path = tmp_path / f"side{side}.csv"
        path.write_text(
            "patient_id,bed_id,reason\n"
            + "".join(f"{side * BEDS + i:05d},R-{i:04d},race\n" for i in range(BEDS))
        )
        files.append(path)
    env = {
        "WARDBULK_DATABASE_URL": database.url,
        "WARDBULK_INBOX_DIR": str(tmp_path / "inbox"),
        "WARDBULK_OUTBOX_DIR": str(tmp_path / "outbox"),
        "WARDBULK_ARCHIVE_DIR": str(tmp_path / "archive"),
        "WARDBULK_CHUNK_SIZE": "100",
    }
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WARDBULK_")} | env
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "processor", "process", str(path), "--operation", "bulk_assignment"],
            cwd=tmp_path,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for path in files
    ]
    results = [racer.communicate(timeout=300) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], results

    per_bed = ws.scalar(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM patient_admissions WHERE is_active GROUP BY bed_id) AS counts"
    )
    assert per_bed == 1
    assert ws.scalar("SELECT count(*) FROM patient_admissions") == BEDS
    assert ws.scalar("SELECT count(*) FROM ward_beds WHERE code LIKE 'R-%' AND status = 'occupied'") == BEDS
    mismatched = ws.scalar(
        "SELECT count(*) FROM ward_beds b JOIN patient_admissions a ON a.bed_id = b.id "
        "WHERE b.current_patient_id <> a.patient_id"
    )
    assert mismatched == 0
    applied = [summary(tmp_path, "bulk_assignment", f"side{side}") for side in (0, 1)]
    assert sum(int(s["successful_records"]) for s in applied) == BEDS  # type: ignore[call-overload]
    assert sum(int(s["failed_records"]) for s in applied) == BEDS  # type: ignore[call-overload]

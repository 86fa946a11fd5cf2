"""The benchmark suite runs end to end at a tiny scale, and its data generator is repeatable and valid.

No timing is asserted here (timings live in the benchmark): only that every figure was measured, is a
positive number, and that every measured process did the right thing.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bench import datagen
from bench.context import DEFAULT_POSTGRES_URL
from bench.measure import BenchFailure, percentile, run_measured
from bench.postgres import libpq

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench"


def _mtimes() -> dict[str, float | None]:
    return {
        name: (BENCH_DIR / name).stat().st_mtime if (BENCH_DIR / name).exists() else None
        for name in ("results.json", "RESULTS.md")
    }


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_the_suite_measures_import_and_assignment_at_a_tiny_scale(tmp_path: Path) -> None:
    """It runs the cases as processes, checks their outcome, and writes every figure to the work folder."""
    before = _mtimes()
    command = [sys.executable, "-m", "bench", "--scale", "0.002", "--only", "import_sqlite,assignment"]
    done = subprocess.run(
        [*command, "--no-write", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # 0: every target met; 1: a target missed (expected at this scale, where start-up dominates).
    assert done.returncode in (0, 1), done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert set(results["cases"]) == {"import_sqlite", "assignment"}
    for case in results["cases"].values():
        assert case["error"] is None
        assert case["figures"]
        for figure in case["figures"]:
            assert _positive(figure["value"]), figure
            assert figure["met"] in (True, False, None), figure
    for figure in results["cases"]["import_sqlite"]["figures"]:
        assert _positive(figure["raw"]) and _positive(figure["ratio"]), figure
        assert isinstance(figure["met"], bool), figure
    targeted = [f["name"] for f in results["cases"]["assignment"]["figures"] if f["met"] is not None]
    assert targeted == [
        "sync_beds 200 rows",
        "bulk_assignment 100 rows",
        "transfer_patients 100 rows",
        "bulk_discharge 100 rows",
    ]
    meta = results["meta"]
    assert meta["scale"] == 0.002 and meta["nproc"] >= 1 and len(meta["commit"]) == 40
    assert "import_patients 2,000 rows" in (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert _mtimes() == before  # a quick run never overwrites the real table


def _postgres_url() -> str:
    """The server the history case seeds on (as the test suite's: ``WARDBULK_TEST_POSTGRES_URL``); skipped
    when it is unreachable on a developer machine, a failure under CI."""
    url = os.environ.get("WARDBULK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        psycopg.connect(libpq(make_url(url)), connect_timeout=5).close()
    except psycopg.Error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires PostgreSQL and it is unreachable: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    return url


def test_the_history_case_seeds_and_measures_at_a_tiny_scale(tmp_path: Path) -> None:
    """Seeded histories of 200, 1,000 (SQLite) and 200 operations (PostgreSQL): every command and build is
    measured and checked (ops stats counts exactly the seeded operations), and each figure is beside the
    same on a fresh database; the targets are those of the largest SQLite history."""
    before = _mtimes()
    command = [sys.executable, "-m", "bench", "--scale", "0.0002", "--only", "history", "--no-write"]
    done = subprocess.run(
        [*command, "--workdir", str(tmp_path), "--postgres-url", _postgres_url()],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    case = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["cases"]["history"]
    assert case["error"] is None
    assert len(case["figures"]) == 3 * 9
    for figure in case["figures"]:
        assert _positive(figure["value"]), figure
        assert figure["raw"] is None or (_positive(figure["raw"]) and _positive(figure["ratio"])), figure
    targeted = [f["name"] for f in case["figures"] if f["met"] is not None]
    assert targeted == [
        "ops stats --json, 1,000 ops, SQLite",
        "dashboard build, 1,000 ops, SQLite",
        "dashboard build peak RSS, 1,000 ops, SQLite",
        "small files with the history, 1,000 ops, SQLite",
    ]
    for key, operations in (("sqlite-200", 200), ("sqlite-1000", 1000), ("postgresql-200", 200)):
        details = case["details"][key]
        assert details["seeded"]["operations"] == operations
        assert details["seeded"]["completed"] + details["seeded"]["failed"] == operations
        assert details["middle_id"] == operations // 2
        for side in ("with_history", "fresh"):
            (burst,) = details[side]["small_files"]["runs"]  # one burst each below scale 0.1
            assert burst["files"] == case["details"]["files"] == 1
        assert set(details["fresh"]) == {"ops_stats", "dashboard", "dashboard_page_bytes", "small_files"}
        assert len(details["files_per_s_ratio_by_round"]) == 1
    assert not list((tmp_path / "cases").glob("history-*"))  # every workspace removed, none left failed
    assert _mtimes() == before


def test_the_generator_gives_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    """Same seed, same bytes; another seed, other bytes."""
    first, again, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    datagen.write_import_patients(first, 500, seed=7)
    datagen.write_import_patients(again, 500, seed=7)
    datagen.write_import_patients(other, 500, seed=8)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_generated_patients_are_unique_and_realistic(tmp_path: Path) -> None:
    """Unique e-mails (ignoring case) and MRNs with leading zeros, varied names, about 30% caregivers."""
    path = tmp_path / "patients.csv"
    assert datagen.write_import_patients(path, 5000, first=123) == 5000
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(datagen.IMPORT_PATIENTS_HEADER)
    emails = [row["email"].lower() for row in rows]
    mrns = [row["patient_id"] for row in rows]
    assert len(set(emails)) == len(emails) == 5000
    assert len(set(mrns)) == 5000 and all(mrn.startswith("0") for mrn in mrns)
    assert any(not row["first_name"].isascii() for row in rows)
    assert all(row["email"].isascii() for row in rows)
    assert 0.25 < sum(bool(row["caregiver_name"]) for row in rows) / 5000 < 0.35
    assert datagen.mrn_of(123) == mrns[0]


def test_percentile_interpolates_between_closest_ranks() -> None:
    """p50 of 1..4 is 2.5; p95 of 0..100 is 95; a single value is every percentile."""
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([float(v) for v in range(101)], 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0


def test_a_small_program_measures_small_whatever_the_size_of_the_benchmark(tmp_path: Path) -> None:
    """The launcher keeps this (large) test process's resident size out of the child's peak RSS."""
    ballast = bytearray(200 * 2**20)  # this process now holds 200 MB more
    ballast[:: 2**12] = b"x" * len(ballast[:: 2**12])
    run = run_measured(["/usr/bin/sqlite3", ":memory:", "SELECT 1"], tmp_path / "sqlite.log").check()
    assert 0 < run.peak_rss_mb < 50 and run.wall_s > 0
    assert run.log.read_text(encoding="utf-8").strip() == "1"


def test_a_failing_program_is_a_bench_failure_naming_its_output(tmp_path: Path) -> None:
    """Exit status and the end of the output are in the message; nothing is measured silently."""
    run = run_measured(["/bin/sh", "-c", "echo broken >&2; exit 3"], tmp_path / "fail.log")
    assert run.returncode == 3
    with pytest.raises(BenchFailure, match=r"exited 3[\s\S]*broken"):
        run.check()

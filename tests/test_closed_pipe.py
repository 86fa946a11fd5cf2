"""A reader that closes wardbulk's stdout early (`wardbulk report … -o - | head -1`) made its choice: the
command exits 0 without a traceback, and a report operation is recorded completed, not failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli
from tests.test_cli_process import env_for


def closed_early(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI with a stdout pipe whose reader is gone before the first byte is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WARDBULK_")} | env
    try:
        return subprocess.run(
            [sys.executable, "-m", "processor", *args],
            cwd=cwd,
            env=full_env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


def test_a_report_to_a_closed_pipe_exits_0_and_its_operation_completes(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = env_for(tmp_path, empty_database_url)
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    done = closed_early(["report", "bed_utilization", "-o", "-"], tmp_path, env)
    assert (done.returncode, done.stderr.decode()) == (0, "")
    [operation] = json.loads(run_cli("ops", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert operation["status"] == "completed"
    assert operation["error_message"].startswith("the reader closed the output early")


def test_any_command_to_a_closed_pipe_exits_0_without_a_traceback(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = env_for(tmp_path, empty_database_url)
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    for args in (["ops", "list"], ["template", "import_patients"], ["config", "check"]):
        done = closed_early(args, tmp_path, env)
        assert (done.returncode, done.stderr.decode()) == (0, ""), args


def test_a_failed_operation_still_exits_1_when_the_reader_has_gone(
    empty_database_url: str, tmp_path: Path
) -> None:
    """A closed pipe is no verdict: `wardbulk process` of a bad file keeps its exit code 1."""
    env = env_for(tmp_path, empty_database_url)
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("first_name,last_name\nA,B\n")
    done = closed_early(["process", str(bad), "--operation", "import_patients"], tmp_path, env)
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()

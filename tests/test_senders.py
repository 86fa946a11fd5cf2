"""Senders (issue 14): a sender's files come in its own shape (column names, values, dates, encoding,
delimiter, error policy), declared in ``[[senders]]`` and recognised by file name; the sender is
recorded on the operation, in the summary and in ``ops list --sender``. Ambiguity is an error, never a
guess: a date that reads two ways, a file two senders claim."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Database, make_workspace, run_cli
from tests.test_cli_process import env_for

EXAMPLE = Path(__file__).parent.parent / "examples" / "sender"


def sender(**fields: Any) -> dict[str, Any]:
    return {"name": "lab", "files": ["LAB_*.csv"], "operations": ["import_patients"], **fields}


def test_aliases_values_and_dates_become_wardbulks_own(tmp_path: Path, database: Database) -> None:
    settings = sender(
        columns={
            "MRN": "patient_id",
            "Given Name": "first_name",
            "SURNAME": "last_name",
            "Mail": "email",
            "DOB": "date_of_birth",
            "Sex": "gender",
        },
        values={"gender": {"Male": "M", "Female": "F"}},
        date_formats=["%d/%m/%Y"],
    )
    workspace = make_workspace(tmp_path, database, senders=[settings])
    content = (
        "mrn,givenname,Surname,MAIL,dob,sex\n"  # aliases match without regard to case or spaces
        "L-1,Ann,Lee,ann@example.org,15/05/1980, female \n"
        "L-2,Bob,Ray,bob@example.org,1980-05-15,Male\n"  # already ISO: no format reads it, left as is
    )
    workspace.drop("import_patients", "LAB_1.csv", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "LAB_1", 1)
    assert (summary["successful_records"], summary["failed_records"], summary["sender"]) == (2, 0, "lab")
    assert workspace.scalar("SELECT count(*) FROM patients WHERE date_of_birth = '1980-05-15'") == 2
    assert workspace.scalar("SELECT gender FROM patients WHERE mrn = 'L-1'") == "F"
    assert workspace.scalar("SELECT sender FROM bulk_operations WHERE id = 1") == "lab"


def test_a_date_that_reads_two_ways_is_an_error_of_its_row(tmp_path: Path, database: Database) -> None:
    settings = sender(date_formats=["%d/%m/%Y", "%m/%d/%Y"], columns={"DOB": "date_of_birth"})
    workspace = make_workspace(tmp_path, database, senders=[settings])
    content = "first_name,last_name,email,DOB\nAnn,Lee,ann@example.org,05/06/1980\nBob,Ray,bob@example.org,25/06/1980\n"
    workspace.drop("import_patients", "LAB_2.csv", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "LAB_2", 1)
    assert (summary["successful_records"], summary["errors_by_code"]) == (1, {"ambiguous-date": 1})
    errors = workspace.output("import_patients", "LAB_2", 1, "errors.csv").read_text(encoding="utf-8-sig")
    assert "1980-05-06 or 1980-06-05" in errors


def test_a_file_of_no_sender_is_read_as_before_and_one_of_two_senders_is_refused(
    tmp_path: Path, database: Database
) -> None:
    both = [sender(name="lab"), sender(name="lab-copy", files=["*_1.csv"])]
    workspace = make_workspace(tmp_path, database, senders=both)
    workspace.drop("import_patients", "plain.csv", "first_name,last_name,email\nAnn,Lee,ann@example.org\n")
    workspace.drop("import_patients", "LAB_1.csv", "first_name,last_name,email\nBob,Ray,bob@example.org\n")
    workspace.run_once()
    plain = workspace.summary("import_patients", "plain", 1)
    assert plain["status"] == "completed" and "sender" not in plain
    refused = workspace.summary("import_patients", "LAB_1", 2)
    assert (refused["status"], refused["error_code"]) == ("failed", "ambiguous-sender")
    assert "'lab', 'lab-copy'" in refused["error_message"]
    assert workspace.scalar("SELECT count(*) FROM patients") == 1


def test_a_senders_own_error_policy_applies_to_its_files_only(tmp_path: Path, database: Database) -> None:
    workspace = make_workspace(tmp_path, database, senders=[sender(on_row_error="reject_file")])
    bad = "first_name,last_name,email\nAnn,Lee,ann@example.org\nBob,Ray,bob@\n"
    workspace.drop("import_patients", "LAB_3.csv", bad)
    workspace.drop("import_patients", "other.csv", bad.replace("ann@", "cid@").replace("Ann", "Cid"))
    workspace.run_once()
    assert workspace.summary("import_patients", "LAB_3", 1)["status"] == "failed"
    assert workspace.summary("import_patients", "other", 2)["status"] == "completed"


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ('columns = { MRN = "patinet_id" }', "senders.0", "'patinet_id' is not a column of import_patients"),
        (
            'columns = { MRN = "patient_id", "m r n" = "email" }',
            "senders.0",
            "reads the same as the alias 'MRN'",
        ),
        ('date_formats = ["%d/%m"]', "senders.0.date_formats", "cannot read a whole date"),
        ('date_formats = ["%d/%m/%y"]', "senders.0.date_formats", "a two-digit year is ambiguous"),
        ('values = { colour = { Red = "R" } }', "senders.0", "values.colour: not a column"),
        ('encoding = "klingon"', "senders.0.encoding", "unknown text encoding"),
        ('date_formats = ["%d/%m/%Y %H:%M"]', "senders.0.date_formats", "a date format has no time"),
        (
            'values = { gender = { Male = "M", " male " = "F" } }',
            "senders.0",
            "reads the same as another value",
        ),
    ],
)
def test_config_check_names_the_key_of_a_wrong_sender(
    tmp_path: Path, table: str, key: str, reason: str
) -> None:
    config = tmp_path / "wardbulk.toml"
    config.write_text(
        f'[[senders]]\nname = "lab"\nfiles = ["LAB_*.csv"]\noperations = ["import_patients"]\n{table}\n'
    )
    result = run_cli("--config", str(config), "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert key in line and reason in line, line


def test_the_worked_example_of_the_readme(tmp_path: Path, empty_database_url: str) -> None:
    """README, "Connect a new sender in five steps", run as written on the example in examples/sender."""
    shutil.copy(EXAMPLE / "wardbulk.toml", tmp_path / "wardbulk.toml")
    env = env_for(tmp_path, empty_database_url, WARDBULK_CONFIG=str(tmp_path / "wardbulk.toml"))
    assert run_cli("config", "check", cwd=tmp_path, env=env).returncode == 0  # step 2
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    example = EXAMPLE / "ADT_20261203.csv"

    dry = run_cli("validate", str(example), "--operation", "import_patients", cwd=tmp_path, env=env)  # step 3
    assert dry.returncode == 0, dry.stderr
    assert "3 of 4 rows valid" in dry.stdout

    real = run_cli("process", str(example), "--operation", "import_patients", cwd=tmp_path, env=env)  # step 4
    assert real.returncode == 0, real.stderr
    summary = json.loads(
        (tmp_path / "outbox" / "import_patients" / "ADT_20261203.op2.summary.json").read_text()
    )
    assert (summary["sender"], summary["successful_records"], summary["failed_records"]) == (
        "st-marys-adt",
        3,
        1,
    )
    rejected = (tmp_path / "outbox" / "import_patients" / "ADT_20261203.op2.rejected.csv").read_bytes()
    assert rejected.decode("cp1252").splitlines()[1].startswith("SM-10003;Ann;O'Neil;31/02/1990")

    listed = json.loads(
        run_cli("ops", "list", "--sender", "st-marys-adt", "--json", cwd=tmp_path, env=env).stdout
    )
    assert [(op["id"], op["status"], op["sender"]) for op in listed] == [
        (2, "completed", "st-marys-adt"),
        (1, "validated", "st-marys-adt"),
    ]  # step 5


def test_dates_are_read_whole_never_split_two_ways(tmp_path: Path, database: Database) -> None:
    """A format without separators reads only the digits it writes; an unpadded day is the padded one."""
    settings = sender(date_formats=["%Y%m%d", "%d/%m/%Y"], columns={"DOB": "date_of_birth"})
    workspace = make_workspace(tmp_path, database, senders=[settings])
    content = "first_name,last_name,email,DOB\nAnn,Lee,ann@example.org,19801203\nBob,Ray,bob@example.org,5/6/1980\nCid,Day,cid@example.org,1980123\n"
    workspace.drop("import_patients", "LAB_4.csv", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "LAB_4", 1)
    assert (summary["successful_records"], summary["failed_records"]) == (2, 1)  # 1980123 is no date
    assert (
        workspace.scalar("SELECT count(*) FROM patients WHERE date_of_birth IN ('1980-12-03', '1980-06-05')")
        == 2
    )


def test_an_interrupted_senders_file_is_resumed_as_that_senders(tmp_path: Path, database: Database) -> None:
    """Recovery reads the file with the sender recorded at registration: its aliases and policy."""
    from sqlalchemy import text

    from processor.adapters import inbox
    from processor.adapters.owners import owner_of_pid
    from processor.core.operation_kinds import OperationType
    from processor.pipeline.file_job import register
    from processor.recovery import recover
    from tests.test_pipeline_safety import dead_pid

    settings = sender(columns={"MRN": "patient_id", "Mail": "email"}, on_row_error="reject_file")
    workspace = make_workspace(tmp_path, database, senders=[settings])
    workspace.drop(
        "import_patients",
        "LAB_5.csv",
        "first_name,last_name,Mail,MRN\nAnn,Lee,ann@example.org,L-5\nBob,Ray,bob@,L-6\n",
    )
    candidate = inbox.InboxFile(
        workspace.inbox / "import_patients" / "LAB_5.csv", OperationType.IMPORT_PATIENTS
    )
    claimed = inbox.claim(workspace.inbox, candidate, owner_of_pid(dead_pid()))
    assert claimed is not None
    register(workspace.pipeline(), claimed, None)
    with workspace.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE bulk_operations SET status = 'processing', host = :dead"),
            {"dead": owner_of_pid(dead_pid())},
        )
    recover(workspace.pipeline())
    summary = workspace.summary("import_patients", "LAB_5", 1)
    assert (summary["sender"], summary["status"], summary["error_code"]) == ("lab", "failed", "row-errors")
    assert workspace.scalar("SELECT count(*) FROM patients") == 0  # its all-or-nothing policy held


def test_a_senders_own_inbox_folder_marks_its_files(tmp_path: Path, empty_database_url: str) -> None:
    """inbox/<op>/<folder>/: every file there is the sender's, whatever its name, and the running
    daemon reads it with the sender's aliases and values."""
    import signal

    from tests.test_daemon_e2e import DaemonRun, wait_for

    config = tmp_path / "wardbulk.toml"
    config.write_text(
        '[[senders]]\nname = "lab"\nfolder = "lab-feed"\noperations = ["import_patients"]\n'
        '[senders.columns]\nMRN = "patient_id"\n[senders.values.gender]\nMale = "M"\n'
    )
    run = DaemonRun(tmp_path, empty_database_url, WARDBULK_CONFIG=str(config))
    try:
        process = run.start()
        dropped = run.inbox() / "lab-feed" / "anything.csv"
        assert dropped.parent.is_dir()  # made by init, like every folder the configuration names
        dropped.write_text("first_name,last_name,email,MRN,gender\nAnn,Lee,ann@example.org,L-9,Male\n")
        wait_for(lambda: "anything" in run.summaries(), what="the sender's file")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        run.stop_all()
    summary = run.summaries()["anything"]
    assert (summary["sender"], summary["successful_records"]) == ("lab", 1)
    assert run.scalar("SELECT gender FROM patients WHERE mrn = 'L-9'") == "M"


def test_a_claim_from_a_senders_folder_left_by_a_dead_process_goes_back_there(
    tmp_path: Path, database: Database
) -> None:
    from processor.adapters import inbox
    from processor.adapters.owners import owner_of_pid
    from processor.core.operation_kinds import OperationType
    from processor.recovery import recover
    from tests.test_pipeline_safety import dead_pid

    workspace = make_workspace(tmp_path, database, senders=[sender(files=[], folder="lab-feed")])
    processing = inbox.processing_folder(workspace.inbox, OperationType.IMPORT_PATIENTS)
    processing.mkdir(parents=True, exist_ok=True)
    name = inbox.claim_name(owner_of_pid(dead_pid()), "results.csv", from_folder="lab-feed")
    (processing / name).write_text("x")
    recover(workspace.pipeline())
    assert (workspace.inbox / "import_patients" / "lab-feed" / "results.csv").read_text() == "x"


@pytest.mark.parametrize(
    ("senders", "reason"),
    [
        ('[[senders]]\nname = "a"\n', "give files (name patterns), folder"),
        ('[[senders]]\nname = "a"\nfolder = "validate"\n', "every inbox's dry-run folder"),
        (
            '[[senders]]\nname = "a"\nfolder = "x"\n[[senders]]\nname = "b"\nfolder = "x"\n',
            "two senders have the folder 'x'",
        ),
        ('[[senders]]\nname = "a"\nfolder = "my_feed"\n', "senders.0.folder"),
    ],
)
def test_config_check_refuses_a_sender_it_could_not_recognise(
    tmp_path: Path, senders: str, reason: str
) -> None:
    config = tmp_path / "wardbulk.toml"
    config.write_text(senders)
    result = run_cli("--config", str(config), "config", "check", cwd=tmp_path)
    assert result.returncode == 2 and reason in result.stderr, result.stderr


def test_the_dashboard_shows_the_sender_and_links_the_rows_to_send_again(
    tmp_path: Path, database: Database
) -> None:
    from datetime import UTC, datetime

    from processor.reports.dashboard import refresh_dashboard

    workspace = make_workspace(tmp_path, database, senders=[sender()])
    workspace.drop(
        "import_patients", "LAB_7.csv", "first_name,last_name,email\nAnn,Lee,ann@example.org\nBob,Ray,bob@\n"
    )
    workspace.run_once()
    page = refresh_dashboard(workspace.database.engine, workspace.outbox, datetime.now(UTC)).read_text(
        encoding="utf-8"
    )
    assert "from lab" in page
    assert 'href="import_patients/LAB_7.op1.rejected.csv"' in page

"""``<stem>.op<N>.rejected.csv`` (issue 14): the failed rows in the input's own shape, for the sender to
fix and send again, like SQL*Loader's "bad file". Exactly as read, never neutralised for Excel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Database, Workspace, make_workspace

HEADER = "first_name,last_name,email,patient_id"


def rejected_bytes(workspace: Workspace, stem: str, operation_id: int) -> bytes:
    return workspace.output("import_patients", stem, operation_id, "rejected.csv").read_bytes()


def test_the_failed_rows_come_back_as_they_were_sent_and_the_good_ones_are_applied(
    workspace: Workspace,
) -> None:
    content = (
        f"{HEADER}\r\n"
        "Ann,Good,ann@example.org,0001\r\n"
        'Bob,"Two\nLines",not-an-e-mail,0002\r\n'  # a quoted line break, kept
        "=1+1,Formula,carl@,0003\r\n"  # a formula: kept as a formula, not neutralised
        "Dee,Ragged\r\n"  # too few cells: kept as ragged
        "Eve,Good,eve@example.org,0005\r\n"
    )
    workspace.drop("import_patients", "feed.csv", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "feed", 1)
    assert (summary["successful_records"], summary["failed_records"]) == (2, 3)
    assert summary["outputs"]["rejected"] == "feed.op1.rejected.csv"
    assert summary["rejected_rows"] == 3
    assert (
        rejected_bytes(workspace, "feed", 1)
        == (
            f'{HEADER}\r\nBob,"Two\nLines",not-an-e-mail,0002\r\n=1+1,Formula,carl@,0003\r\nDee,Ragged\r\n'
        ).encode()
    )


def test_the_rejected_file_keeps_the_inputs_delimiter_encoding_and_byte_order_mark(
    workspace: Workspace,
) -> None:
    """A semicolon file from Excel with a BOM, and a Windows-1252 file (configured as the fallback)."""
    with_bom = "\ufeff" + "first_name;last_name;email\r\nZoë;Ok;zoe@example.org\r\nRené;Bad;rene@\r\n"
    workspace.drop("import_patients", "excel.csv", with_bom.encode("utf-8"))
    workspace.run_once()
    assert (
        rejected_bytes(workspace, "excel", 1)
        == "\ufefffirst_name;last_name;email\r\nRené;Bad;rene@\r\n".encode()
    )


def test_a_windows_1252_file_gets_its_rejected_rows_in_windows_1252(
    tmp_path: Path, database: Database
) -> None:
    workspace = make_workspace(tmp_path, database, operations={"import_patients": {"encoding": "cp1252"}})
    content = "first_name,last_name,email\r\nRené,Bad,rene@\r\nAnn,Ok,ann@example.org\r\n"
    workspace.drop("import_patients", "legacy.csv", content.encode("cp1252"))
    workspace.run_once()
    assert rejected_bytes(
        workspace, "legacy", 1
    ) == "first_name,last_name,email\r\nRené,Bad,rene@\r\n".encode("cp1252")


def test_no_failed_row_no_rejected_file(workspace: Workspace) -> None:
    workspace.drop("import_patients", "clean.csv", f"{HEADER}\nAnn,Good,ann@example.org,0001\n")
    workspace.run_once()
    summary: dict[str, Any] = workspace.summary("import_patients", "clean", 1)
    assert "rejected" not in summary["outputs"] and "rejected_rows" not in summary
    assert not list((workspace.outbox / "import_patients").glob("*rejected*"))


def test_a_fixed_rejected_file_sent_again_is_applied(workspace: Workspace) -> None:
    """The round trip a sender makes: fix the cells named in errors.csv, drop the file again."""
    workspace.drop(
        "import_patients", "daily.csv", f"{HEADER}\nAnn,Good,ann@example.org,0001\nBob,Bad,bob@,0002\n"
    )
    workspace.run_once()
    fixed = rejected_bytes(workspace, "daily", 1).replace(b"bob@,", b"bob@example.org,")
    workspace.drop("import_patients", "daily.op1.rejected.csv", fixed)
    workspace.run_once()
    again = workspace.summary("import_patients", "daily.op1.rejected", 2)
    assert (again["status"], again["successful_records"], again["failed_records"]) == ("completed", 1, 0)
    assert workspace.scalar("SELECT count(*) FROM patients") == 2


def test_a_file_refused_as_a_whole_has_no_rejected_rows_file(tmp_path: Path, database: Database) -> None:
    """max_error_rate refuses the whole file: its valid rows were not applied either, so the file to send
    again is the whole original (in rejected/), not the failed rows alone."""
    workspace = make_workspace(tmp_path, database, operations={"import_patients": {"max_error_rate": 0.5}})
    content = f"{HEADER}\nA,B,a@,1\nC,D,c@,2\nE,F,e@example.org,3\n"
    workspace.drop("import_patients", "mostly-bad.csv", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "mostly-bad", 1)
    assert (summary["status"], summary["error_code"]) == ("failed", "too-many-errors")
    assert "rejected" not in summary["outputs"] and "rejected_rows" not in summary
    assert not list((workspace.outbox / "import_patients").glob("*.rejected.csv"))
    assert (workspace.outbox / "import_patients" / "rejected" / "mostly-bad.op1.csv").read_text() == content

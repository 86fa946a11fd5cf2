"""A file outside the operation folders (a mistyped folder, the inbox root) is never applied, and never
ignored in silence either: it is logged once, noted in outbox/unknown/ with the folders that exist, and
listed on the dashboard."""

from __future__ import annotations

import json
from pathlib import Path

from processor.adapters.strays import find_strays
from processor.core.operation_kinds import OPERATION_NAMES
from tests.conftest import Workspace

CONTENT = "first_name,last_name,email\nAna,Lee,ana@example.org\n"


def test_strays_are_unknown_folders_their_files_and_files_in_the_root(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    for folder in (*OPERATION_NAMES, ".processing", "import_patient"):
        (inbox / folder).mkdir(parents=True)
    (inbox / "import_patient" / "typo.csv").write_text(CONTENT)
    (inbox / "import_patient" / "half.csv.tmp").write_text(CONTENT)  # ignored everywhere
    (inbox / "root.csv").write_text(CONTENT)
    (inbox / "~$lock.csv").write_text("")
    (inbox / "import_patients" / "fine.csv").write_text(CONTENT)
    found = [(stray.relative, stray.is_folder) for stray in find_strays(inbox, OPERATION_NAMES)]
    assert found == [("import_patient/", True), ("import_patient/typo.csv", False), ("root.csv", False)]


def test_the_daemon_notes_each_stray_file_once_and_applies_nothing(workspace: Workspace) -> None:
    (workspace.inbox / "import_patient").mkdir()
    (workspace.inbox / "import_patient" / "typo.csv").write_text(CONTENT)
    (workspace.inbox / "root.csv").write_text(CONTENT)
    workspace.run_once()
    notes = sorted((workspace.outbox / "unknown").iterdir())
    assert [note.name for note in notes] == ["import_patient__typo.csv.unknown.json", "root.csv.unknown.json"]
    note = json.loads(notes[0].read_text(encoding="utf-8"))
    assert note["entry"] == "inbox/import_patient/typo.csv" and note["applied"] is False
    assert "inbox/import_patients/" in note["operation_folders"]
    assert workspace.scalar("SELECT count(*) FROM bulk_operations") == 0
    assert (workspace.inbox / "root.csv").exists()  # left where the sender put it
    dashboard = (workspace.outbox / "dashboard.html").read_text(encoding="utf-8")
    assert "<code>inbox/import_patient/typo.csv</code>" in dashboard and 'id="strays"' in dashboard
    written = notes[0].stat().st_mtime_ns
    workspace.run_once()
    assert notes[0].stat().st_mtime_ns == written  # one note per name, not one per scan


def test_a_clean_inbox_shows_no_strays(workspace: Workspace) -> None:
    workspace.run_once()
    assert 'id="strays"' not in (workspace.outbox / "dashboard.html").read_text(encoding="utf-8")
    assert not (workspace.outbox / "unknown").exists()

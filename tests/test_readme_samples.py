"""The README's CSV samples work, in order, against a fresh `wardbulk init --demo` database."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO_ROOT, Workspace

SECTION = re.compile(r"^### (\w+) \(`inbox/(\w+)/`\)$(.*?)^```csv\n(.*?)^```", re.M | re.S)
ORDER = (
    "import_patients",
    "sync_beds",
    "bulk_assignment",
    "transfer_patients",
    "bulk_discharge",
    "export_report",
)


def readme_samples() -> dict[str, str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return {folder: sample for _, folder, _, sample in SECTION.findall(text)}


def test_every_operation_with_a_format_section_has_a_sample() -> None:
    assert set(readme_samples()) == set(ORDER)


def test_the_samples_apply_without_a_single_row_error(workspace: Workspace) -> None:
    samples = readme_samples()
    for operation in ORDER:
        workspace.drop(operation, "sample.csv", samples[operation])
        workspace.run_once()
        summary = json.loads(next((workspace.outbox / operation).glob("sample.op*.summary.json")).read_text())
        assert (operation, summary["status"], summary["failed_records"]) == (operation, "completed", 0), (
            summary
        )
        assert summary["total_records"] == samples[operation].count("\n") - 1

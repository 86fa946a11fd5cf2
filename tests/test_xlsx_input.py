"""Excel input (issue 14): an .xlsx file in any inbox is read like a CSV file, one sheet of it, streamed.
Lines are the sheet's physical rows; date cells become ISO dates; numbers keep no ``.0``; CSV's header,
row and size rules apply. Old, locked, macro-enabled, damaged and bomb-like workbooks are refused with a
clear ``unsupported-workbook`` (or ``file-too-large``), never half read."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from processor.adapters import xlsx_input
from processor.adapters.xlsx_input import read_xlsx
from processor.core.csv_reading import MAX_FIELD_CHARS, ColumnSpec, CsvFile, Record
from processor.core.problems import Code, FileRejected
from tests.conftest import REPO_ROOT, Database, Workspace, make_workspace, run_cli
from tests.test_cli_process import env_for

SPEC = ColumnSpec(("first_name", "last_name", "email"), ("patient_id", "phone", "date_of_birth"))
HEADER = ["first_name", "last_name", "email", "patient_id", "phone", "date_of_birth"]
OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")
Cells = dict[tuple[int, int], Any]  # (row, column) → value, both 1-based, as Excel numbers them


def workbook(*sheets: tuple[str, Cells], formats: dict[tuple[int, int], str] | None = None) -> bytes:
    """An .xlsx made by openpyxl's ordinary (write) mode, as a spreadsheet program would save it;
    ``formats``: number formats of the first sheet's cells (a date cell gets ``dd/mm/yyyy``)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for index, (title, cells) in enumerate(sheets):
        sheet = book.create_sheet(title)
        for (row, column), value in cells.items():
            cell = sheet.cell(row=row, column=column, value=value)
            if isinstance(value, date):
                cell.number_format = "dd/mm/yyyy"
            if index == 0 and formats and (row, column) in formats:
                cell.number_format = formats[(row, column)]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def table(rows: dict[int, list[Any]]) -> Cells:
    """Cells from whole rows at the given physical row numbers."""
    return {(row, column): value for row, values in rows.items() for column, value in enumerate(values, 1)}


def patients(rows: dict[int, list[Any]], title: str = "Patients") -> bytes:
    return workbook((title, table({1: HEADER, **rows})))


def read(content: bytes, sheet: str | None = None, **kwargs: Any) -> CsvFile:
    return read_xlsx(io.BytesIO(content), SPEC, sheet, **kwargs)


def records(content: bytes, sheet: str | None = None) -> list[Record]:
    return list(read(content, sheet).records)


def rejection(content: bytes, sheet: str | None = None) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        records(content, sheet)
    return caught.value


def rezipped(
    content: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None
) -> bytes:
    """The workbook's zip with some members' bytes replaced and others added."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            target.writestr(member.filename, (replace or {}).get(member.filename, source.read(member)))
        for name, data in (add or {}).items():
            target.writestr(name, data)
    return out.getvalue()


def sheet_xml(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return archive.read("xl/worksheets/sheet1.xml").decode()


def with_sheet_xml(content: bytes, xml: str) -> bytes:
    return rezipped(content, replace={"xl/worksheets/sheet1.xml": xml.encode()})


def bomb(padding: int = 70 * 1024 * 1024) -> bytes:
    """A workbook whose sheet XML unpacks to ``padding`` more bytes (spaces after its root element,
    valid XML) than the rest: written in pieces, it deflates about a thousand times."""
    content = patients({2: ["Ann", "Lee", "ann@example.org"]})
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            if member.filename != "xl/worksheets/sheet1.xml":
                target.writestr(member.filename, source.read(member))
                continue
            with target.open(member.filename, "w") as sheet:
                sheet.write(source.read(member))
                for _ in range(padding // (1024 * 1024)):
                    sheet.write(b" " * (1024 * 1024))
    return out.getvalue()


# --- reading a sheet -------------------------------------------------------------------------------


def test_lines_are_physical_rows_and_blank_rows_are_skipped() -> None:
    """Two blank rows before the header, a blank row, a gap of three rows: every line is the row's own."""
    content = workbook(
        (
            "Patients",
            table(
                {
                    3: HEADER,
                    4: ["Ann", "Lee", "ann@example.org"],
                    6: ["Bob", "Ray", "bob@example.org"],
                    10: ["Cid", "Day", "cid@example.org"],
                }
            ),
        )
    )
    csv_file = read(content)
    assert (csv_file.labels, csv_file.delimiter, csv_file.unknown_columns) == (HEADER, ",", [])
    found = list(csv_file.records)
    assert [record.line for record in found] == [4, 6, 10]
    assert [record.cells["first_name"] for record in found] == ["Ann", "Bob", "Cid"]
    assert all(record.errors == [] for record in found)  # short rows are padded, not missing-cell
    assert found[0].raw == ["Ann", "Lee", "ann@example.org", "", "", ""]


def test_cells_become_the_text_a_csv_export_would_hold() -> None:
    cells = table(
        {
            1: [*HEADER, "admitted", "notify", "weight", "debt"],
            2: [
                "Ann",
                "Lee",
                "ann@example.org",
                123,
                5551234,
                date(1980, 5, 15),
                datetime(2026, 1, 2, 8, 30),
                True,
                72.5,
                -3,
            ],
            3: [
                "Bob",
                "Ray",
                "bob@example.org",
                42.0,
                12345.0,
                datetime(1979, 12, 31),
                None,
                False,
                0.1,
                1e20,
            ],
        }
    )
    content = workbook(("Patients", cells), formats={(2, 4): "00000"})  # an MRN shown with its zeros
    first, second = records(content)
    assert first.raw == [
        "Ann",
        "Lee",
        "ann@example.org",
        "00123",
        "5551234",
        "1980-05-15",
        "2026-01-02T08:30:00",
        "TRUE",
        "72.5",
        "-3",
    ]
    assert second.raw == [
        "Bob",
        "Ray",
        "bob@example.org",
        "42",
        "12345",
        "1979-12-31",
        "",
        "FALSE",
        "0.1",
        "100000000000000000000",
    ]
    assert first.cells["date_of_birth"] == "1980-05-15"


def test_a_formula_reads_as_the_value_excel_last_computed() -> None:
    content = patients(
        {
            2: ["Ann", "Lee", "ann@example.org", "P-1", "=5550000+1234"],
            3: ["Bob", "Ray", "bob@example.org", "P-2", "=1+1"],
        }
    )
    xml = sheet_xml(content)
    assert xml.count("<f>") == 2  # openpyxl writes formulas without a cached value; Excel writes one
    computed = re.sub(r"(<c r=\"E2\"[^>]*><f>[^<]*</f>)<v\s*/>", r"\1<v>5551234</v>", xml)
    first, second = records(with_sheet_xml(content, computed))
    assert first.cells["phone"] == "5551234"
    assert second.cells["phone"] == ""  # never computed: an empty cell, for the row's own checks


def test_the_configured_sheet_is_read_by_its_name_without_regard_to_case() -> None:
    content = workbook(
        ("Notes", table({1: ["just a note"]})),
        ("Export", table({1: HEADER, 5: ["Ann", "Lee", "ann@example.org"]})),
    )
    assert [record.line for record in records(content, sheet="EXPORT")] == [5]
    with pytest.raises(FileRejected) as caught:
        read(content)  # the first sheet is read by default: its header has none of the columns
    assert caught.value.code is Code.MISSING_LABEL


def test_a_sheet_that_is_not_there_is_refused_naming_the_sheets_there_are() -> None:
    refused = rejection(workbook(("Notes", {}), ("Export", table({1: HEADER}))), sheet="Patients")
    assert refused.code is Code.UNSUPPORTED_WORKBOOK
    assert "no sheet named 'Patients'" in refused.message and "'Notes', 'Export'" in refused.message


def test_the_header_rules_are_csvs_and_a_senders_aliases_apply() -> None:
    content = workbook(("S", table({2: ["MRN", "Given", "Surname", "Mail", "mail", "colour"]})))
    with pytest.raises(FileRejected) as caught:
        read(content)
    assert {(problem.code, problem.line) for problem in caught.value.problems} == {
        (Code.DUPLICATE_LABEL, 2),  # "Mail" and "mail"
        (Code.MISSING_LABEL, 2),
    }
    aliases = {"mrn": "patient_id", "given": "first_name", "surname": "last_name", "mail": "email"}
    with pytest.raises(FileRejected) as caught:
        read(content, column_of=lambda label: aliases.get(label.lower(), label.lower()))
    assert [(problem.code, problem.line) for problem in caught.value.problems] == [(Code.DUPLICATE_LABEL, 2)]
    content = workbook(
        (
            "S",
            table(
                {1: ["MRN", "Given", "Surname", "Mail", "colour"], 2: ["7", "Ann", "Lee", "a@b.org", "red"]}
            ),
        )
    )
    csv_file = read(content, column_of=lambda label: aliases.get(label.lower(), label.lower()))
    assert csv_file.unknown_columns == ["colour"]
    assert next(csv_file.records).cells == {
        "patient_id": "7",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "a@b.org",
    }


def test_a_value_to_the_right_of_the_header_and_a_control_character_are_errors_of_their_row() -> None:
    content = patients(
        {2: ["Ann", "Lee", "ann@example.org", "", "", "", "stray"], 3: ["Bob", "Ray", "bob@example.org"]}
    )
    # Excel writes a character XML cannot hold as _xHHHH_, and a literal "_x" pattern with _x005F_.
    xml = (
        sheet_xml(content)
        .replace("<t>Bob</t>", "<t>Bob_x0007_</t>")
        .replace("<t>Ray</t>", "<t>R_x005F_x0041_y</t>")
    )
    first, second = records(with_sheet_xml(content, xml))
    assert [error.code for error in first.errors] == [Code.EXTRA_CELL]
    assert [(error.code, error.line, error.column) for error in second.errors] == [
        (Code.CONTROL_CHARACTER, 3, "first_name")
    ]
    assert second.raw[:2] == ["Bob\x07", "R_x0041_y"]


def test_an_empty_sheet_is_an_empty_file_and_a_header_alone_has_no_records() -> None:
    assert rejection(workbook(("Empty", {}))).code is Code.EMPTY_FILE
    assert records(patients({})) == []


# --- limits ----------------------------------------------------------------------------------------


def test_a_cell_over_the_field_limit_rejects_the_file_at_its_row() -> None:
    """Excel and openpyxl keep a cell to 32,767 characters; another program may not."""
    content = patients({2: ["Ann", "Lee", "ann@example.org"], 4: ["Bob", "Ray", "b@c.org"]})
    xml = sheet_xml(content).replace("<t>Ray</t>", f"<t>{'x' * (MAX_FIELD_CHARS + 1)}</t>")
    refused = rejection(with_sheet_xml(content, xml))
    assert (refused.code, refused.problems[0].line) == (Code.FIELD_TOO_LARGE, 4)


def test_a_sheet_wider_than_the_column_limit_is_refused_at_its_row() -> None:
    cells = table({1: HEADER, 2: ["Ann", "Lee", "ann@example.org"]})
    cells[(3, xlsx_input.MAX_COLUMNS + 1)] = "far away"
    refused = rejection(workbook(("S", cells)))
    assert (refused.code, refused.problems[0].line) == (Code.UNSUPPORTED_WORKBOOK, 3)
    assert "far away" not in refused.message


def test_a_workbook_that_unpacks_far_beyond_its_size_is_refused_before_it_is_parsed() -> None:
    content = bomb()
    assert len(content) < 1024 * 1024
    refused = rejection(content)
    assert refused.code is Code.FILE_TOO_LARGE
    assert "unpacks to" in refused.message


def test_the_unpacked_bound_has_a_floor_a_ratio_and_a_ceiling() -> None:
    assert xlsx_input.unpacked_bound(1000) == xlsx_input.UNPACKED_FLOOR
    assert xlsx_input.unpacked_bound(10 * 1024 * 1024) == 400 * 1024 * 1024
    assert xlsx_input.unpacked_bound(512 * 1024 * 1024) == xlsx_input.UNPACKED_CEILING


# --- refusals --------------------------------------------------------------------------------------


def test_a_macro_enabled_workbook_is_refused() -> None:
    content = rezipped(
        patients({2: ["Ann", "Lee", "ann@example.org"]}), add={"xl/vbaProject.bin": b"\x00" * 64}
    )
    refused = rejection(content)
    assert (refused.code, "macro-enabled" in refused.message) == (Code.UNSUPPORTED_WORKBOOK, True)
    for name in ("feed.xlsm", "feed.XLSB", "feed.xls"):
        problem = xlsx_input.suffix_problem(name)
        assert problem is not None and problem.code is Code.UNSUPPORTED_WORKBOOK, name
    assert xlsx_input.suffix_problem("feed.xlsx") is None and xlsx_input.suffix_problem("feed.csv") is None


def test_an_old_or_password_protected_workbook_is_refused_by_its_bytes() -> None:
    fake_xls = OLE2 + b"\x00" * 504 + b"junk"
    refused = rejection(fake_xls)
    assert refused.code is Code.UNSUPPORTED_WORKBOOK and "without a password" in refused.message
    for name in ("feed.xlsx", "feed.csv"):
        problem = xlsx_input.content_problem(name, fake_xls[: xlsx_input.HEAD_BYTES])
        assert problem is not None and "without a password" in problem.message


@pytest.mark.parametrize(
    "content",
    [
        b"first_name,last_name,email\nAnn,Lee,ann@example.org\n",  # a CSV named .xlsx
        b"PK\x03\x04",  # a zip cut short
        b"",
    ],
)
def test_an_xlsx_that_is_not_a_zip_is_refused(content: bytes) -> None:
    assert "not a readable Excel workbook" in rejection(content).message


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "Ann Lee called")
    refused = rejection(out.getvalue())
    assert (refused.code, "not a readable Excel workbook" in refused.message) == (
        Code.UNSUPPORTED_WORKBOOK,
        True,
    )
    assert xlsx_input.content_problem("feed.csv", out.getvalue()[:8]) is not None  # a zip named .csv


def test_a_damaged_sheet_is_refused_from_its_row_without_quoting_it() -> None:
    content = patients({2: ["Ann", "Lee", "ann@example.org"], 3: ["Secret", "Patient", "sp@example.org"]})
    xml = sheet_xml(content)
    damaged = with_sheet_xml(
        content, xml.replace('<row r="3"', '<row r="3"><c r="A3" t="inlineStr"><is><t>Secret</t></c>', 1)
    )
    csv_file = read(damaged)
    with pytest.raises(FileRejected) as caught:
        list(csv_file.records)
    refused = caught.value
    assert refused.code is Code.UNSUPPORTED_WORKBOOK and "from row 3" in refused.message
    assert "Secret" not in refused.message


def test_xml_entities_are_refused_not_expanded() -> None:
    """The "billion laughs": defusedxml, which openpyxl uses, forbids entity declarations."""
    content = patients({2: ["Ann", "Lee", "ann@example.org"]})
    xml = sheet_xml(content)
    laughs = '<!DOCTYPE worksheet [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    bombed = xml.replace("<t>Ann</t>", "<t>&b;</t>").replace("<worksheet", laughs + "<worksheet", 1)
    assert rejection(with_sheet_xml(content, bombed)).code is Code.UNSUPPORTED_WORKBOOK


def test_openpyxl_is_imported_only_when_a_workbook_is_read() -> None:
    code = "import sys, processor.pipeline.validation, processor.pipeline.checks; print('openpyxl' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


# --- end to end, on both databases -------------------------------------------------------------------


def summaries(workspace: Workspace, operation: str = "import_patients") -> dict[str, dict[str, Any]]:
    """Every summary of the operation's outbox by its input's stem."""
    found = {}
    for path in (workspace.outbox / operation).glob("*.summary.json"):
        found[path.name.split(".op")[0]] = json.loads(path.read_text())
    return found


def test_an_xlsx_dropped_in_the_inbox_is_imported_with_physical_lines(workspace: Workspace) -> None:
    content = workbook(
        (
            "Patients",
            table(
                {
                    2: HEADER,
                    3: ["Ann", "Lee", "ann@example.org", "00017", 5551234, date(1980, 5, 15)],
                    4: ["Bob", "Ray", "not-an-e-mail", "P-2", 12345.0, date(1981, 1, 2)],
                    8: ["Cid", "Day", "cid@example.org", "P-3", "555 0000", "1979-12-31"],
                }
            ),
        )
    )
    workspace.drop("import_patients", "ward.xlsx", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "ward", 1)
    assert (summary["status"], summary["successful_records"], summary["failed_records"]) == (
        "completed",
        2,
        1,
    )
    assert summary["input_file"].endswith("ward.xlsx")
    [error] = workspace.rows("import_patients", "ward", 1, "errors.csv")
    assert (error["line"], error["column"], error["code"]) == ("4", "email", "type-error")
    result = workspace.rows("import_patients", "ward", 1, "result.csv")
    assert [(row["line"], row["outcome"]) for row in result] == [("3", "ok"), ("4", "error"), ("8", "ok")]
    assert workspace.scalar("SELECT phone FROM patients WHERE mrn = '00017'") == "5551234"
    assert str(workspace.scalar("SELECT date_of_birth FROM patients WHERE mrn = '00017'")) == "1980-05-15"
    assert str(workspace.scalar("SELECT date_of_birth FROM patients WHERE mrn = 'P-3'")) == "1979-12-31"
    assert any((workspace.root / "archive" / "import_patients").rglob("ward.op1.xlsx"))

    rejected = workspace.output("import_patients", "ward", 1, "rejected.csv").read_bytes()
    assert summary["outputs"]["rejected"] == "ward.op1.rejected.csv"
    assert (
        rejected
        == ("\ufeff" + ",".join(HEADER) + "\r\nBob,Ray,not-an-e-mail,P-2,12345,1981-01-02\r\n").encode()
    )


def test_the_rejected_rows_of_an_xlsx_fixed_and_sent_as_csv_are_applied(workspace: Workspace) -> None:
    workspace.drop(
        "import_patients",
        "ward.xlsx",
        patients({2: ["Bob", "Ray", "bob@", "P-2", 5550001, date(1981, 1, 2)]}),
    )
    workspace.run_once()
    rejected = workspace.output("import_patients", "ward", 1, "rejected.csv").read_text(encoding="utf-8-sig")
    workspace.drop("import_patients", "ward-fixed.csv", rejected.replace("bob@", "bob@example.org"))
    workspace.run_once()
    summary = workspace.summary("import_patients", "ward-fixed", 2)
    assert (summary["status"], summary["successful_records"]) == ("completed", 1)
    assert str(workspace.scalar("SELECT date_of_birth FROM patients WHERE mrn = 'P-2'")) == "1981-01-02"


def test_a_senders_aliases_dates_and_sheet_apply_to_its_workbooks(tmp_path: Path, database: Database) -> None:
    sender = {
        "name": "lab",
        "files": ["LAB_*.xlsx"],
        "operations": ["import_patients"],
        "columns": {
            "MRN": "patient_id",
            "Given Name": "first_name",
            "Surname": "last_name",
            "Mail": "email",
            "DOB": "date_of_birth",
        },
        "values": {"gender": {"Female": "F"}},
        "date_formats": ["%d/%m/%Y"],
        "sheet": "Export",
    }
    workspace = make_workspace(tmp_path, database, senders=[sender])
    content = workbook(
        ("Cover", table({1: ["printed by the lab"]})),
        (
            "Export",
            table(
                {
                    1: ["MRN", "Given Name", "SURNAME", "mail", "DOB", "gender"],
                    2: ["L-1", "Ann", "Lee", "ann@example.org", "15/05/1980", "female"],  # a date as text
                    3: ["L-2", "Bob", "Ray", "bob@example.org", date(1980, 5, 15), "Female"],  # a date cell
                }
            ),
        ),
    )
    workspace.drop("import_patients", "LAB_7.xlsx", content)
    workspace.run_once()
    summary = workspace.summary("import_patients", "LAB_7", 1)
    assert (summary["status"], summary["successful_records"], summary["sender"]) == ("completed", 2, "lab")
    assert (
        workspace.scalar("SELECT count(*) FROM patients WHERE date_of_birth = '1980-05-15' AND gender = 'F'")
        == 2
    )


def test_workbooks_that_cannot_be_read_are_refused_with_a_clear_code(
    tmp_path: Path, database: Database
) -> None:
    workspace = make_workspace(tmp_path, database, operations={"import_patients": {"sheet": "Patients"}})
    good = patients({2: ["Ann", "Lee", "ann@example.org"]})
    drops = {
        "old.xls": (OLE2 + b"\x00" * 600, "unsupported-workbook"),
        "locked.xlsx": (OLE2 + b"\x00" * 600, "unsupported-workbook"),
        "macros.xlsm": (good, "unsupported-workbook"),
        "binary.xlsb": (b"PK\x03\x04junk", "unsupported-workbook"),
        "vba.xlsx": (rezipped(good, add={"xl/vbaProject.bin": b"\x00"}), "unsupported-workbook"),
        "notazip.xlsx": (b"first_name,last_name,email\n", "unsupported-workbook"),
        "zipped.csv": (good, "unsupported-workbook"),
        "othersheet.xlsx": (
            patients({2: ["Ann", "Lee", "ann@example.org"]}, title="Sheet1"),
            "unsupported-workbook",
        ),
        "bomb.xlsx": (bomb(), "file-too-large"),
        "notes.txt": (b"Ann Lee called", "not-csv"),
    }
    for name, (content, _) in drops.items():
        workspace.drop("import_patients", name, content)
    workspace.run_once()
    found = summaries(workspace)
    for name, (_, code) in drops.items():
        summary = found[Path(name).stem]
        assert (summary["status"], summary["error_code"]) == ("failed", code), name
        assert any((workspace.outbox / "import_patients" / "rejected").glob(f"{Path(name).stem}.op*")), name
    assert "'Sheet1'" in found["othersheet"]["error_message"]
    assert "only .csv and .xlsx files" in found["notes"]["error_message"]
    assert workspace.scalar("SELECT count(*) FROM patients") == 0


def test_validate_reads_an_xlsx_from_the_command_line(tmp_path: Path, database: Database) -> None:
    env = env_for(tmp_path, database.url)
    assert run_cli("init", "--demo", cwd=tmp_path, env=env).returncode == 0
    feed = tmp_path / "feed.xlsx"
    feed.write_bytes(
        patients({2: ["Ann", "Lee", "ann@example.org", "P-1"], 5: ["Bob", "Ray", "bob@", "P-2"]})
    )
    dry = run_cli("validate", str(feed), "--operation", "import_patients", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "1 of 2 rows valid" in dry.stdout
    outbox = tmp_path / "outbox" / "import_patients"
    [error] = csv.DictReader(io.StringIO((outbox / "feed.op1.errors.csv").read_text(encoding="utf-8-sig")))
    assert (error["line"], error["column"]) == ("5", "email")
    assert json.loads((outbox / "feed.op1.summary.json").read_text())["status"] == "validated"


def test_an_excel_error_or_a_number_excel_did_not_keep_exactly_is_an_error_of_its_row() -> None:
    """A broken formula's #N/A is not an identifier, and a 20-digit number typed into Excel is no
    longer the one typed: either fails its row (type-error), never becomes a patient_id."""
    content = patients(
        {
            2: ["Ann", "Lee", "ann@example.org", "#N/A"],
            3: ["Bob", "Ray", "bob@example.org", 12345678901234567890],
            4: ["Cy", "Fox", "cy@example.org", 123456789012345],  # 15 digits: exact
        }
    )
    found = records(content)
    assert [[(e.line, e.column, e.code) for e in r.errors] for r in found] == [
        [(2, "patient_id", Code.TYPE_ERROR)],
        [(3, "patient_id", Code.TYPE_ERROR)],
        [],
    ]
    assert "Excel error" in found[0].errors[0].message and found[0].errors[0].value == "#N/A"
    assert found[2].cells["patient_id"] == "123456789012345"


def test_a_renamed_document_is_refused_as_a_workbook_would_be() -> None:
    """A Word file renamed .xlsx is a zip whose parts are not a workbook's."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        archive.writestr("word/document.xml", "<w:document/>")
    assert rejection(out.getvalue()).code == Code.UNSUPPORTED_WORKBOOK


def test_no_cell_value_reaches_stderr_through_an_openpyxl_warning(tmp_path: Path, database: Database) -> None:
    """openpyxl warns about a date cell out of range quoting its serial number; wardbulk's log (stderr)
    must not carry it."""
    env = env_for(tmp_path, database.url)
    assert run_cli("init", cwd=tmp_path, env=env).returncode == 0
    content = workbook(
        ("Patients", table({1: HEADER, 2: ["Ann", "Lee", "ann@example.org", "P-1", "555", 987654321]})),
        formats={(2, 6): "dd/mm/yyyy"},
    )
    feed = tmp_path / "feed.xlsx"
    feed.write_bytes(content)
    dry = run_cli("validate", str(feed), "--operation", "import_patients", cwd=tmp_path, env=env)
    assert dry.returncode in (0, 1), dry.stderr
    assert "987654321" not in dry.stderr + dry.stdout


def test_a_senders_rejected_rows_of_a_workbook_use_its_delimiter(tmp_path: Path, database: Database) -> None:
    """So that the sender, whose CSVs are read with its delimiter, can send them back as they are."""
    sender = {"name": "lab", "files": ["LAB_*"], "operations": ["import_patients"], "delimiter": ";"}
    workspace = make_workspace(tmp_path, database, senders=[sender])
    workspace.drop("import_patients", "LAB_1.xlsx", patients({2: ["Ann", "Lee", "not-an-email"]}))
    workspace.run_once()
    rejected = workspace.output("import_patients", "LAB_1", 1, "rejected.csv").read_text(encoding="utf-8-sig")
    assert rejected.splitlines()[0] == ";".join(HEADER)
    fixed = rejected.replace("not-an-email", "ann@example.org")
    workspace.drop("import_patients", "LAB_2.csv", fixed)
    workspace.run_once()
    assert workspace.summary("import_patients", "LAB_2", 2)["successful_records"] == 1

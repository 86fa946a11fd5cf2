"""Specification of the pure CSV reading core: decoding, delimiter, header checks and strict parsing.

Every test feeds real bytes through ``decode_lines`` the way the pipeline does (physical lines split on
``b"\\n"``, as a file opened in ``"rb"`` yields them), so line numbers are the ones a user sees in an editor.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.core.csv_reading import MAX_FIELD_CHARS, ColumnSpec, decode_lines, read_csv
from processor.core.problems import Code, FileRejected

SPEC = ColumnSpec(required=("first_name", "last_name", "email"), optional=("ward",))
HEADER = b"first_name,last_name,email\n"
BOM = codecs.BOM_UTF8


def read(data: bytes, spec: ColumnSpec = SPEC, fallback: str = "utf-8"):
    """The CsvFile for ``data``, read as the pipeline reads a file."""
    return read_csv(decode_lines(io.BytesIO(data), fallback), spec)


def records(data: bytes, spec: ColumnSpec = SPEC, fallback: str = "utf-8"):
    """All records of ``data`` (iterating them triggers the row-level parsing)."""
    return list(read(data, spec, fallback).records)


def rejection(data: bytes, spec: ColumnSpec = SPEC, fallback: str = "utf-8") -> FileRejected:
    """The FileRejected raised while reading ``data`` completely."""
    with pytest.raises(FileRejected) as info:
        records(data, spec, fallback)
    return info.value


def codes(record) -> list[Code]:
    return [error.code for error in record.errors]


# --- Encoding -------------------------------------------------------------------------------------


def test_utf8_without_bom_is_read():
    """A UTF-8 file without BOM is read, non-ASCII characters included."""
    (record,) = records(HEADER + "Renée,Müller,rené@example.org\n".encode())
    assert record.cells == {"first_name": "Renée", "last_name": "Müller", "email": "rené@example.org"}


def test_utf8_with_bom_is_read():
    """A UTF-8 file with BOM is read like one without."""
    data = HEADER + "Renée,Müller,r@example.org\n".encode()
    assert [r.cells for r in records(BOM + data)] == [r.cells for r in records(data)]


def test_bom_is_not_part_of_first_label():
    """The UTF-8 BOM is not part of the first header label."""
    csv_file = read(BOM + HEADER + b"Ann,Lee,a@x.org\n")
    assert csv_file.labels == ["first_name", "last_name", "email"]
    assert csv_file.unknown_columns == []
    assert next(csv_file.records).cells["first_name"] == "Ann"


def test_bom_before_leading_blank_lines_is_removed():
    """A BOM on a blank first line does not stop the header below it from being found."""
    csv_file = read(BOM + b"\n" + HEADER + b"Ann,Lee,a@x.org\n")
    assert csv_file.labels == ["first_name", "last_name", "email"]
    assert [r.line for r in csv_file.records] == [3]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("fallback", ["utf-8", "cp1252"])
def test_utf16_is_rejected_on_line_1(encoding, fallback):
    """A UTF-16 file (with a BOM) is an encoding-error on line 1, even with a fallback encoding."""
    bom = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[encoding]
    data = bom + "first_name,last_name,email\nAnn,Lee,a@x.org\n".encode(encoding)
    rejected = rejection(data, fallback=fallback)
    assert rejected.code is Code.ENCODING_ERROR
    assert [p.line for p in rejected.problems] == [1]
    assert "CSV UTF-8" in rejected.message


def test_invalid_utf8_reports_its_physical_line():
    """Invalid UTF-8 is an encoding-error on its physical line, with the "CSV UTF-8" hint."""
    data = HEADER + b'Ann,Lee,"multi\nline"\nBob,Ray,b@x.org\nRen\xe9e,Roe,r@x.org\n'
    rejected = rejection(data)
    assert rejected.code is Code.ENCODING_ERROR
    assert [p.line for p in rejected.problems] == [5]
    assert "line 5" in rejected.message
    assert 'save the file from Excel as "CSV UTF-8 (Comma delimited)"' in rejected.message


def test_invalid_utf8_in_header_is_line_1():
    """Invalid UTF-8 in the header is an encoding-error on line 1, raised by read_csv itself."""
    with pytest.raises(FileRejected) as info:
        read(b"first_name,last_name,\xff\xfeemail\n")
    assert info.value.code is Code.ENCODING_ERROR
    assert info.value.problems[0].line == 1


def test_records_before_an_undecodable_line_are_yielded_first():
    """Decoding is streamed: records before an undecodable line are yielded before the rejection."""
    csv_file = read(HEADER + b"Ann,Lee,a@x.org\nBob,Ray,b@x.org\n\xc3(,x,y\n")
    assert next(csv_file.records).line == 2
    assert next(csv_file.records).line == 3
    with pytest.raises(FileRejected) as info:
        next(csv_file.records)
    assert (info.value.code, info.value.problems[0].line) == (Code.ENCODING_ERROR, 4)


def test_cp1252_decodes_with_the_fallback():
    """cp1252 bytes decode when fallback_encoding="cp1252"."""
    (record,) = records(HEADER + b"Ren\xe9e,Fran\xe7ois,r@x.org\n", fallback="cp1252")
    assert record.cells["first_name"] == "Renée"
    assert record.cells["last_name"] == "François"


def test_cp1252_is_an_encoding_error_without_the_fallback():
    """cp1252 bytes are an encoding-error when no fallback encoding is configured."""
    rejected = rejection(HEADER + b"Ren\xe9e,Roe,r@x.org\n")
    assert rejected.code is Code.ENCODING_ERROR
    assert rejected.problems[0].line == 2


def test_fallback_is_only_used_for_lines_that_are_not_utf8():
    """With a fallback, valid UTF-8 lines are still read as UTF-8: each line is decoded on its own."""
    data = HEADER + "Renée,Utf,u@x.org\n".encode() + b"Ren\xe9e,Ansi,a@x.org\n"
    assert [r.cells["first_name"] for r in records(data, fallback="cp1252")] == ["Renée", "Renée"]


def test_fallback_name_is_normalised():
    """The fallback encoding may be given by any of its aliases ("windows-1252", "CP1252")."""
    for alias in ("windows-1252", "CP1252"):
        (record,) = records(HEADER + b"Ren\xe9e,Roe,r@x.org\n", fallback=alias)
        assert record.cells["first_name"] == "Renée"


def test_byte_undefined_in_cp1252_fails_even_with_the_fallback():
    """A byte cp1252 does not define (0x81) is an encoding-error even with the cp1252 fallback."""
    rejected = rejection(HEADER + b"Ann,Lee,a\x81@x.org\n", fallback="cp1252")
    assert rejected.code is Code.ENCODING_ERROR
    assert rejected.problems[0].line == 2
    assert "cp1252" in rejected.message
    assert "CSV UTF-8" in rejected.message


def test_decode_lines_yields_one_string_per_physical_line():
    """decode_lines yields each physical line as text, line ending included."""
    assert list(decode_lines([BOM + b"a,b\r\n", b"\xc3\xa9\n", b"c"])) == ["a,b\r\n", "é\n", "c"]


# --- Delimiter ------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_detected(delimiter):
    """A comma-, semicolon- or tab-separated file is read with its own delimiter."""
    data = delimiter.join(["first_name", "last_name", "email"]) + "\n"
    data += delimiter.join(["Ann", "Lee", "a@x.org"]) + "\n"
    csv_file = read(data.encode())
    assert csv_file.delimiter == delimiter
    assert [r.cells for r in csv_file.records] == [
        {"first_name": "Ann", "last_name": "Lee", "email": "a@x.org"}
    ]


def test_semicolon_header_is_read_with_semicolons():
    """A semicolon-separated header is read with semicolons; commas in its cells are plain text."""
    csv_file = read(b"first_name;last_name;email\nAnn;Lee, Jr.;a@x.org\n")
    assert csv_file.delimiter == ";"
    assert next(csv_file.records).cells["last_name"] == "Lee, Jr."


def test_quoted_comma_in_header_label_with_semicolons():
    """A comma inside a quoted header label does not make a semicolon header comma-separated."""
    csv_file = read(b'first_name;"Notes, misc";last_name;email\nAnn;hi, there;Lee;a@x.org\n')
    assert csv_file.delimiter == ";"
    assert csv_file.labels == ["first_name", "Notes, misc", "last_name", "email"]
    assert csv_file.unknown_columns == ["Notes, misc"]
    assert next(csv_file.records).raw == ["Ann", "hi, there", "Lee", "a@x.org"]


def test_delimiter_splitting_into_most_known_columns_wins():
    """The delimiter chosen is the one that splits the header into the most known columns."""
    # Commas give ["first_name;last_name;email;Notes", " misc"]: no known column at all.
    csv_file = read(b"first_name;last_name;email;Notes, misc\nAnn;Lee;a@x.org;n\n")
    assert csv_file.delimiter == ";"
    assert csv_file.unknown_columns == ["Notes, misc"]
    # Semicolons give ["first_name,last_name,email,Ward", "Bed"]: again no known column.
    assert read(b"first_name,last_name,email,Ward;Bed\n").delimiter == ","


def test_delimiter_tie_keeps_comma():
    """When every delimiter splits the header equally well, the comma is used."""
    spec = ColumnSpec(required=("email",))
    csv_file = read(b"email\na;b\tc\n", spec)
    assert csv_file.delimiter == ","
    assert next(csv_file.records).cells == {"email": "a;b\tc"}


# --- Header ---------------------------------------------------------------------------------------


def test_header_labels_are_trimmed_and_case_insensitive():
    """Header labels are trimmed and case-insensitive: "  First_Name " is the first_name column."""
    csv_file = read(b"  First_Name ,LAST_NAME,\tEmail\nAnn,Lee,a@x.org\n")
    assert csv_file.labels == ["First_Name", "LAST_NAME", "Email"]
    assert csv_file.unknown_columns == []
    assert next(csv_file.records).cells == {"first_name": "Ann", "last_name": "Lee", "email": "a@x.org"}


def test_header_columns_may_come_in_any_order():
    """Cells are matched to columns by header label, not by position."""
    (record,) = records(b"email,ward,last_name,first_name\na@x.org,W1,Lee,Ann\n")
    assert record.cells == {"first_name": "Ann", "last_name": "Lee", "email": "a@x.org", "ward": "W1"}


def test_missing_optional_column_is_fine():
    """An optional column may be absent from the header; it is then absent from the cells."""
    (record,) = records(HEADER + b"Ann,Lee,a@x.org\n")
    assert "ward" not in record.cells


def test_missing_required_column_rejects_the_file():
    """A missing required column is missing-label on line 1, naming the column."""
    with pytest.raises(FileRejected) as info:
        read(b"first_name,last_name\nAnn,Lee\n")
    assert [(p.code, p.line, p.column) for p in info.value.problems] == [(Code.MISSING_LABEL, 1, "email")]
    assert info.value.code is Code.MISSING_LABEL


def test_each_missing_required_column_is_one_problem():
    """Every missing required column is its own missing-label problem, in the spec's order."""
    rejected = rejection(b"ward,notes\nW1,n\n")
    assert [(p.code, p.line, p.column) for p in rejected.problems] == [
        (Code.MISSING_LABEL, 1, "first_name"),
        (Code.MISSING_LABEL, 1, "last_name"),
        (Code.MISSING_LABEL, 1, "email"),
    ]


def test_duplicate_label_after_normalisation_rejects_the_file():
    """A label repeated after trimming and lower-casing ("email" and " EMAIL") is duplicate-label."""
    rejected = rejection(b"first_name,last_name,email, EMAIL\nAnn,Lee,a@x.org,b@x.org\n")
    assert [(p.code, p.line, p.column) for p in rejected.problems] == [(Code.DUPLICATE_LABEL, 1, "email")]


def test_duplicate_unknown_label_rejects_the_file():
    """A repeated unknown column is duplicate-label too."""
    rejected = rejection(b"first_name,last_name,email,Notes,notes\n")
    assert [(p.code, p.column) for p in rejected.problems] == [(Code.DUPLICATE_LABEL, "notes")]


def test_duplicate_and_missing_labels_are_reported_together():
    """A header with both a repeated and a missing column reports both problems."""
    rejected = rejection(b"first_name,First_Name,email\n")
    assert [(p.code, p.column) for p in rejected.problems] == [
        (Code.DUPLICATE_LABEL, "first_name"),
        (Code.MISSING_LABEL, "last_name"),
    ]


def test_unknown_columns_are_reported_then_ignored():
    """Unknown columns are listed in unknown_columns (as labelled) and left out of record.cells."""
    csv_file = read(b"first_name,Ward Notes,last_name,email,BED\nAnn,quiet,Lee,a@x.org,12\n")
    assert csv_file.unknown_columns == ["Ward Notes", "BED"]
    record = next(csv_file.records)
    assert record.cells == {"first_name": "Ann", "last_name": "Lee", "email": "a@x.org"}
    assert record.raw == ["Ann", "quiet", "Lee", "a@x.org", "12"]


def test_empty_header_labels_are_not_duplicates():
    """Empty header labels (trailing commas) are neither duplicate labels nor unknown columns."""
    csv_file = read(b"first_name,last_name,email,, ,\nAnn,Lee,a@x.org,,,\n")
    assert csv_file.unknown_columns == []
    (record,) = csv_file.records
    assert record.cells == {"first_name": "Ann", "last_name": "Lee", "email": "a@x.org"}
    assert record.errors == []


def test_unterminated_quote_in_header_is_malformed_on_line_1():
    """An unterminated quote in the header is malformed-csv on line 1, where the header starts."""
    rejected = rejection(b'first_name,last_name,"email\nAnn,Lee,a@x.org\nBob,Ray,b@x.org\n')
    assert rejected.code is Code.MALFORMED_CSV
    assert rejected.problems[0].line == 1


# --- Empty files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\n", b"\n\n\n", b"\r\n  \r\n\t\r\n", b",,,\n;;;\n , ;\n", BOM, BOM + b"\r\n"],
    ids=["zero-bytes", "one-newline", "blank-lines", "crlf-whitespace", "only-delimiters", "bom", "bom-crlf"],
)
def test_file_without_header_is_empty(data):
    """A file of zero bytes, or of only blank lines, is empty-file."""
    with pytest.raises(FileRejected) as info:
        read(data)
    assert info.value.code is Code.EMPTY_FILE


def test_header_without_rows_has_no_records():
    """A file with a header and no data rows reads as no records (the caller decides it is empty)."""
    assert records(HEADER) == []
    assert records(HEADER + b"\n,,\n\n") == []


# --- Records and line numbers ---------------------------------------------------------------------


def test_records_carry_their_physical_line():
    """Each record's line is its physical line, the header being line 1."""
    data = HEADER + b"Ann,Lee,a@x.org\nBob,Ray,b@x.org\nCy,Doe,c@x.org"  # no final newline
    assert [(r.line, r.cells["first_name"]) for r in records(data)] == [(2, "Ann"), (3, "Bob"), (4, "Cy")]


def test_quoted_newlines_shift_the_next_records_line():
    """A quoted cell spanning several lines keeps its start line, and the next record counts those lines."""
    data = HEADER + b'Ann,Lee,"a\nb\n\nc"\nBob,"Ray\nRoe",b@x.org\nCy,Doe,c@x.org\n'
    assert [(r.line, r.cells["first_name"]) for r in records(data)] == [(2, "Ann"), (6, "Bob"), (8, "Cy")]
    assert records(data)[0].cells["email"] == "a\nb\n\nc"


def test_leading_blank_lines_before_header_count():
    """Blank lines before the header are skipped but still counted in record lines."""
    csv_file = read(b"\n \n,,\n" + HEADER + b"Ann,Lee,a@x.org\n")
    assert csv_file.labels == ["first_name", "last_name", "email"]
    assert [r.line for r in csv_file.records] == [5]


def test_blank_and_delimiter_only_lines_are_skipped():
    """Blank lines and lines of only delimiters and spaces are skipped, and still counted."""
    data = HEADER + b"\nAnn,Lee,a@x.org\n,,,\n , ,\n\t\nBob,Ray,b@x.org\n\n"
    assert [(r.line, r.cells["first_name"]) for r in records(data)] == [(3, "Ann"), (7, "Bob")]


def test_delimiter_only_lines_are_skipped_with_semicolons():
    """In a semicolon file, lines of only semicolons are skipped."""
    data = b"first_name;last_name;email\n;;;\nAnn;Lee;a@x.org\n ; ;\n"
    assert [(r.line, r.raw) for r in records(data)] == [(3, ["Ann", "Lee", "a@x.org"])]


def test_crlf_line_endings():
    """CRLF line endings are not part of any cell and count as one line each."""
    data = b"first_name,last_name,email\r\nAnn,Lee,a@x.org\r\n\r\nBob,Ray,b@x.org\r\n"
    result = records(data)
    assert [(r.line, r.raw) for r in result] == [
        (2, ["Ann", "Lee", "a@x.org"]),
        (4, ["Bob", "Ray", "b@x.org"]),
    ]


def test_crlf_inside_quoted_cell():
    """A quoted cell spanning lines in a CRLF file keeps its start line, and the next record counts them."""
    data = b'first_name,last_name,email\r\nAnn,"Lee\r\nSmith",a@x.org\r\nBob,Ray,b@x.org\r\n'
    result = records(data)
    assert [r.line for r in result] == [2, 4]
    assert result[0].cells["last_name"].splitlines() == ["Lee", "Smith"]
    assert result[0].cells["email"] == "a@x.org"


def test_spaces_in_cells_are_preserved():
    """Leading and trailing spaces stay in raw and cells: stripping is the models' job."""
    (record,) = records(HEADER + b"Ann  , Lee,a@x.org \n")
    assert record.raw == ["Ann  ", " Lee", "a@x.org "]
    assert record.cells == {"first_name": "Ann  ", "last_name": " Lee", "email": "a@x.org "}


def test_quoted_cells_are_unquoted():
    """Quoted cells lose their quotes, and doubled quotes inside them become one."""
    (record,) = records(HEADER + b'"Ann","Lee, ""Jr""",""\n')
    assert record.raw == ["Ann", 'Lee, "Jr"', ""]


def test_records_are_read_lazily():
    """read_csv only reads the header; records are parsed as they are iterated."""
    lines = iter(["first_name,last_name,email\n", "Ann,Lee,a@x.org\n", "Bob,Ray,b@x.org\n"])
    csv_file = read_csv(lines, SPEC)
    assert next(lines) == "Ann,Lee,a@x.org\n"  # untouched by read_csv
    assert [r.cells["first_name"] for r in csv_file.records] == ["Bob"]


def test_real_file_opened_in_binary_mode(tmp_path: Path):
    """A real Excel-style file (BOM, semicolons, CRLF, quoted newline) opened with "rb" is read."""
    path = tmp_path / "patients.csv"
    path.write_bytes(
        BOM
        + "First_Name;Last_Name;Email;Ward\r\n"
        "Renée;Lee;r@x.org;W1\r\n"
        '"Ann\r\nMarie";Roe;a@x.org;\r\n'
        ";;;\r\n"
        "Bob;Ray;b@x.org;W2\r\n".encode()
    )
    with open(path, "rb") as raw:
        csv_file = read_csv(decode_lines(raw), SPEC)
        result = list(csv_file.records)
    assert csv_file.delimiter == ";"
    assert csv_file.labels == ["First_Name", "Last_Name", "Email", "Ward"]
    assert [r.line for r in result] == [2, 3, 6]
    assert [r.cells["first_name"].splitlines() for r in result] == [["Renée"], ["Ann", "Marie"], ["Bob"]]
    assert result[1].cells["ward"] == ""
    assert all(r.errors == [] for r in result)


# --- Ragged rows ----------------------------------------------------------------------------------


def test_short_row_is_missing_cell():
    """A row with fewer cells than the header is missing-cell, naming the first missing column."""
    (record,) = records(HEADER + b"Ann,Lee\n")
    assert [(e.code, e.line, e.column) for e in record.errors] == [(Code.MISSING_CELL, 2, "email")]
    assert record.cells == {"first_name": "Ann", "last_name": "Lee", "email": ""}


def test_long_row_with_values_is_extra_cell():
    """A row with extra non-empty cells beyond the header is extra-cell."""
    (record,) = records(HEADER + b"Ann,Lee,a@x.org,,surprise\n")
    assert [(e.code, e.line) for e in record.errors] == [(Code.EXTRA_CELL, 2)]
    assert record.cells == {"first_name": "Ann", "last_name": "Lee", "email": "a@x.org"}


def test_long_row_of_empty_extras_is_fine():
    """A row whose extra cells are all empty or spaces (trailing commas) has no error."""
    result = records(HEADER + b"Ann,Lee,a@x.org,,,\nBob,Ray,b@x.org, ,\n")
    assert [r.errors for r in result] == [[], []]
    assert result[0].raw == ["Ann", "Lee", "a@x.org", "", "", ""]


def test_ragged_rows_keep_their_lines():
    """Errors of ragged rows carry the physical line where the record starts."""
    data = HEADER + b'Ann,"Lee\nRoe"\nBob,Ray,b@x.org,x\n'
    assert [(r.line, codes(r), [e.line for e in r.errors]) for r in records(data)] == [
        (2, [Code.MISSING_CELL], [2]),
        (4, [Code.EXTRA_CELL], [4]),
    ]


# --- Control characters ---------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f"])
def test_control_character_in_cell(char):
    """NUL and other control characters in a cell are control-character, naming the column."""
    value = f"a{char}b@x.org"
    (record,) = records(HEADER + f"Ann,Lee,{value}\n".encode())
    assert [(e.code, e.line, e.column, e.value) for e in record.errors] == [
        (Code.CONTROL_CHARACTER, 2, "email", value)
    ]


def test_every_cell_with_a_control_character_is_reported():
    """Each cell holding a control character is its own control-character error."""
    (record,) = records(HEADER + b'\x00Ann,Lee,"a\x07\nb"\n')
    assert [(e.code, e.column, e.line) for e in record.errors] == [
        (Code.CONTROL_CHARACTER, "first_name", 2),
        (Code.CONTROL_CHARACTER, "email", 2),
    ]


def test_tab_and_quoted_newline_are_not_control_characters():
    """A tab in a cell, or a newline (LF or CRLF) inside a quoted cell, is not a control-character error."""
    data = HEADER + b'Ann\tMarie,"Lee\nRoe","a@x.org\r\nsecond"\r\n'
    (record,) = records(data)
    assert record.errors == []
    assert record.cells["first_name"] == "Ann\tMarie"


# --- Strict parsing -------------------------------------------------------------------------------


def test_unterminated_quote_rejects_at_its_starting_line():
    """An unterminated quote is malformed-csv on the line where its record starts, raised while iterating."""
    data = HEADER + b'Ann,Lee,a@x.org\nBob,"Ray,b@x.org\nCy,Doe,c@x.org\nDi,Fox,d@x.org\n'
    csv_file = read(data)  # the header is fine: nothing is raised yet
    seen = []
    with pytest.raises(FileRejected) as info:
        for record in csv_file.records:
            seen.append(record)
    assert [r.line for r in seen] == [2]
    assert [(p.code, p.line) for p in info.value.problems] == [(Code.MALFORMED_CSV, 3)]
    assert "line 3" in info.value.message


def test_unterminated_quote_never_swallows_the_rest_of_the_file():
    """An unterminated quote is never read as one cell holding the rest of the file."""
    data = HEADER + b'Ann,Lee,"a@x.org\nBob,Ray,b@x.org\n'
    csv_file = read(data)
    with pytest.raises(FileRejected) as info:
        for record in csv_file.records:
            pytest.fail(f"a record was yielded: {record!r}")
    assert info.value.code is Code.MALFORMED_CSV


def test_unterminated_quote_after_multiline_record_and_blank_lines():
    """The malformed-csv line is the physical start of the broken record, after quoted newlines and blanks."""
    data = HEADER + b'Ann,"Lee\nRoe",a@x.org\n\n\nBob,Ray,"b@x.org\nCy,Doe,c@x.org'
    rejected = rejection(data)
    assert [(p.code, p.line) for p in rejected.problems] == [(Code.MALFORMED_CSV, 6)]


def test_text_after_closing_quote_is_malformed():
    """Text after a closing quote ("Ann"x) is malformed-csv: parsing is strict."""
    rejected = rejection(HEADER + b'Ann,Lee,a@x.org\n"Bob"x,Ray,b@x.org\n')
    assert [(p.code, p.line) for p in rejected.problems] == [(Code.MALFORMED_CSV, 3)]


def test_bare_carriage_return_in_row_is_malformed():
    """A carriage return inside an unquoted cell is malformed-csv on that record's line."""
    rejected = rejection(HEADER + b"Ann,Lee,a@x.org\nBob,Ray\rRoe,b@x.org\n")
    assert [(p.code, p.line) for p in rejected.problems] == [(Code.MALFORMED_CSV, 3)]


def test_cr_only_line_endings_are_rejected_not_crashed():
    """A file with old-Mac CR-only line endings is rejected as malformed-csv, not an unexpected exception."""
    rejected = rejection(b"first_name,last_name,email\rAnn,Lee,a@x.org\r")
    assert rejected.code is Code.MALFORMED_CSV
    assert rejected.problems[0].line == 1


# --- Field size -----------------------------------------------------------------------------------


def test_cell_of_max_field_chars_is_accepted():
    """A cell of exactly MAX_FIELD_CHARS characters is accepted."""
    (record,) = records(HEADER + b"Ann,Lee," + b"x" * MAX_FIELD_CHARS + b"\n")
    assert len(record.cells["email"]) == MAX_FIELD_CHARS


def test_cell_longer_than_max_field_chars_rejects_the_file():
    """A cell longer than MAX_FIELD_CHARS is field-too-large on its record's line."""
    data = HEADER + b"Ann,Lee,a@x.org\nBob,Ray," + b"x" * (MAX_FIELD_CHARS + 1) + b"\n"
    rejected = rejection(data)
    assert [(p.code, p.line) for p in rejected.problems] == [(Code.FIELD_TOO_LARGE, 3)]


def test_quoted_cell_spanning_lines_counts_all_its_characters():
    """A quoted cell spanning lines is too large when all its lines together exceed MAX_FIELD_CHARS."""
    half = b"y" * (MAX_FIELD_CHARS // 2 + 1)
    rejected = rejection(HEADER + b'Ann,Lee,"' + half + b"\n" + half + b'"\n')
    assert [(p.code, p.line) for p in rejected.problems] == [(Code.FIELD_TOO_LARGE, 2)]


def test_header_cell_longer_than_max_field_chars_rejects_the_file():
    """A header label longer than MAX_FIELD_CHARS is field-too-large on line 1."""
    rejected = rejection(b"first_name,last_name,email," + b"z" * (MAX_FIELD_CHARS + 1) + b"\n")
    assert [(p.code, p.line) for p in rejected.problems] == [(Code.FIELD_TOO_LARGE, 1)]


# --- Round trip property --------------------------------------------------------------------------

COLUMNS = ("first_name", "last_name", "email", "ward")
CELL_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from([",", ";", '"', "\n", " ", "\t", "é", "ß", "日", "😀", "a", "Z", "0"]),
        st.characters(exclude_categories=("Cs", "Cc")),
    ),
    max_size=12,
)


@st.composite
def tables(draw):
    """A spec, a header in some order and spelling, and rows that are not entirely blank."""
    width = draw(st.integers(min_value=1, max_value=4))
    names = draw(st.permutations(COLUMNS))[:width]
    required = draw(st.integers(min_value=1, max_value=width))
    spec = ColumnSpec(required=tuple(names[:required]), optional=tuple(names[required:]))
    spellings = [draw(st.sampled_from([name, name.upper(), f" {name.title()} "])) for name in names]
    row = st.lists(CELL_TEXT, min_size=width, max_size=width).filter(
        lambda cells: any(c.strip() for c in cells)
    )
    rows = draw(st.lists(row, max_size=20))
    blanks_before = draw(
        st.lists(st.integers(min_value=0, max_value=2), min_size=len(rows), max_size=len(rows))
    )
    return spec, names, spellings, rows, blanks_before


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), terminator=st.sampled_from(["\r\n", "\n"]), bom=st.booleans())
def test_csv_writer_output_reads_back_exactly(table, terminator, bom):
    """Whatever csv.writer writes (CRLF or LF) reads back as the same cells, each on its physical start line."""
    spec, names, spellings, rows, blanks_before = table
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=terminator)
    writer.writerow(spellings)
    expected_lines = []
    for row, blanks in zip(rows, blanks_before, strict=True):
        out.write(terminator * blanks)
        expected_lines.append(out.getvalue().count("\n") + 1)
        writer.writerow(row)
    data = (BOM if bom else b"") + out.getvalue().encode("utf-8")

    csv_file = read(data, spec)
    result = list(csv_file.records)

    assert csv_file.delimiter == ","
    assert csv_file.unknown_columns == []
    assert [r.raw for r in result] == rows
    assert [r.cells for r in result] == [dict(zip(names, row, strict=True)) for row in rows]
    assert [r.line for r in result] == expected_lines
    assert all(r.errors == [] for r in result)


def test_rows_may_omit_the_cells_under_trailing_empty_header_labels():
    """Excel's trailing empty labels ("email,,") do not make shorter rows ragged."""
    [record] = records(b"first_name,last_name,email,,\nAnn,Lee,a@example.org\n")
    assert record.errors == []


def test_header_problems_name_the_physical_line_of_the_header():
    """After leading blank lines the header is not line 1, and its problems say where it is."""
    problem = rejection(b"\n\nfirst_name,last_name\nAnn,Lee\n")
    assert [(p.code, p.line) for p in problem.problems] == [(Code.MISSING_LABEL, 3)]

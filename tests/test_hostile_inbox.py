"""The hostile inbox: whatever an inbox entry is (its name, its type, its content), it ends with an outbox
summary, nothing of it is half-applied, and the daemon goes on.

The daemon tests run the real ``wardbulk run`` in a subprocess (``tests/hostile.py``, built on
``DaemonRun``). After every hostile entry they check that the daemon is alive, that
``inbox/.processing/`` is empty, that a valid file dropped next completes within 5 seconds, and that the
ward tables hold exactly the rows the summaries report as applied; at the end SIGTERM stops it with exit 0.
Summaries are found by their ``input_file``, the display name of the input (``expected_display`` mirrors
the rule of ``processor.core.names.display_name``). The CSV fuzzer at the end runs in-process.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from processor.adapters import inbox
from processor.adapters.database.engine import build_engine
from processor.adapters.owners import this_process
from processor.core.operation_kinds import OperationType
from processor.core.operation_types import OperationStatus
from processor.pipeline import Pipeline, process_claimed
from tests.conftest import Database, Workspace, make_workspace
from tests.hostile import (
    ESCAPED_CATEGORIES,
    IMPORT_HEADER,
    NAME_MAX,
    HostileRun,
    bad_names_under,
    entries_under,
    expected_display,
    import_csv,
    init_workspace,
    is_plain,
    keeps_its_stem,
    regular_file_contents,
    run_command,
    without_file_permission_override,
)

NOT_REGULAR = "not-a-regular-file"
SECRET_EMAIL = "symlinkina.secret@example.org"
SECRET_CSV = import_csv(("Symlinkina", "Secret", SECRET_EMAIL))
PATIENT_USERS_SQL = "SELECT count(*) FROM users WHERE email IS NOT NULL"
PROMPT_S = 20.0  # `wardbulk process` on a FIFO or /dev/zero must return within this (no hang)


@pytest.fixture
def hostile(tmp_path: Path, empty_database_url: str) -> Iterator[HostileRun]:
    """A wardbulk installation (demo wards and beds) on a fresh database; its daemons killed afterwards."""
    run = HostileRun(tmp_path, empty_database_url)
    yield run
    run.stop_all()


def error_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def entry_type(path: Path) -> str:
    """What a directory entry is, without following it."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    for kind, test in (
        ("symlink", stat.S_ISLNK),
        ("fifo", stat.S_ISFIFO),
        ("socket", stat.S_ISSOCK),
        ("directory", stat.S_ISDIR),
        ("regular", stat.S_ISREG),
    ):
        if test(mode):
            return kind
    return "other"


def fingerprint(path: Path) -> tuple[bytes, int, int]:
    """A symlink target's bytes, modification time and inode: "untouched" means all three unchanged."""
    status = os.stat(path)
    return path.read_bytes(), status.st_mtime_ns, status.st_ino


def files_containing(needle: bytes, *roots: Path, excluded: Path | None = None) -> list[str]:
    """Regular files under ``roots`` (not following links; not below ``excluded``) holding ``needle``."""
    skip = os.fsencode(excluded) if excluded is not None else None
    return [
        os.fsdecode(path)
        for path, data in regular_file_contents(*roots)
        if needle in data and not (skip and (path == skip or path.startswith(skip + b"/")))
    ]


# --- entries that are not regular files -------------------------------------------------------------

NON_REGULAR_NAMES = {
    "symlink-to-a-csv-outside-the-inbox": "linked.csv",
    "symlink-to-dev-zero": "zero.csv",
    "symlink-to-etc-passwd": "passwd.csv",
    "dangling-symlink": "dangling.csv",
    "fifo": "fifo.csv",
    "unix-socket": "socket.csv",
    "directory-named-x.csv": "folder.csv",
}
ENTRY_TYPES = {
    "symlink-to-a-csv-outside-the-inbox": "symlink",
    "symlink-to-dev-zero": "symlink",
    "symlink-to-etc-passwd": "symlink",
    "dangling-symlink": "symlink",
    "fifo": "fifo",
    "unix-socket": "socket",
    "directory-named-x.csv": "directory",
}


def passwd_line() -> bytes:
    return Path("/etc/passwd").read_bytes().splitlines()[0]


def make_unix_socket(path: Path) -> None:
    """A Unix socket at ``path``, bound under a short folder (socket paths are limited to 107 bytes)."""
    short = Path(tempfile.mkdtemp(prefix="sock", dir=tempfile.gettempdir()))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.bind(str(short / "s"))
        os.rename(short / "s", path)
    finally:
        shutil.rmtree(short)


def make_non_regular(kind: str, entry: Path, root: Path) -> bytes | None:
    """Create the entry ``kind`` at ``entry``; return bytes of what it leads to, which no outbox file may
    contain (None when there is nothing to look for)."""
    if kind == "symlink-to-a-csv-outside-the-inbox":
        target = root / "outside" / "patients.csv"
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            target.write_bytes(SECRET_CSV)
        os.symlink(target, entry)
        return SECRET_EMAIL.encode()
    if kind == "symlink-to-dev-zero":
        os.symlink("/dev/zero", entry)
        return None
    if kind == "symlink-to-etc-passwd":
        os.symlink("/etc/passwd", entry)
        return passwd_line()
    if kind == "dangling-symlink":
        os.symlink(root / "nowhere" / "gone.csv", entry)
        return None
    if kind == "fifo":
        os.mkfifo(entry)
        return None
    if kind == "unix-socket":
        make_unix_socket(entry)
        return None
    assert kind == "directory-named-x.csv"
    # Made outside the inbox and renamed in whole: a running daemon takes such a folder at once, and
    # would take an empty one made in place before its file is written.
    made = root / f"making-{entry.name}"
    made.mkdir()
    (made / "inner.csv").write_bytes(import_csv(("Dirk", "Inner", "dirk.inner@example.org")))
    os.rename(made, entry)
    return b"dirk.inner@example.org"


def targets_fingerprint(root: Path) -> dict[str, tuple[bytes, int, int]]:
    outside = root / "outside" / "patients.csv"
    found = {"/etc/passwd": fingerprint(Path("/etc/passwd"))}
    if outside.exists():
        found[str(outside)] = fingerprint(outside)
    return found


def assert_refused_as_not_regular(
    run: HostileRun, kind: str, name: str, path: Path, summary: dict[str, Any], secret: bytes | None
) -> None:
    """The refusal of one entry: summary, errors.csv, BulkOperation, the entry itself in rejected/."""
    operation_id = int(summary["operation_id"])
    stem, suffix = Path(name).stem, Path(name).suffix
    assert (summary["status"], summary["error_code"]) == ("failed", NOT_REGULAR), summary
    assert path.name == f"{stem}.op{operation_id}.summary.json"
    assert run.operation_row(operation_id) == ("failed", NOT_REGULAR)
    codes = [(row["line"], row["code"]) for row in error_rows(run.output_path(summary, "errors"))]
    assert ("", NOT_REGULAR) in codes, codes
    rejected = run.outbox() / "rejected" / f"{stem}.op{operation_id}{suffix}"
    assert entry_type(rejected) == ENTRY_TYPES[kind], f"rejected/{rejected.name}: {entry_type(rejected)}"
    assert not os.path.lexists(run.inbox() / name), "the entry is still in the inbox"
    if ENTRY_TYPES[kind] == "symlink":
        assert os.readlink(rejected) == os.readlink(run.root / "original-links" / name)
    if secret is not None:
        trees = (run.root / "outbox", run.root / "archive", run.root / "inbox")
        assert files_containing(secret, *trees, excluded=rejected) == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(NON_REGULAR_NAMES))
def test_an_entry_that_is_not_a_regular_file_is_refused_and_never_opened(
    hostile: HostileRun, kind: str
) -> None:
    """A symlink (to a CSV outside the inbox, /dev/zero, /etc/passwd, or dangling), a FIFO, a Unix socket
    or a directory named x.csv is neither opened nor followed: its summary says failed,
    not-a-regular-file; the entry itself (the link, not its target) moves to rejected/; a link's target
    is untouched and its contents reach no outbox file."""
    hostile.start()
    name = NON_REGULAR_NAMES[kind]
    entry = hostile.inbox() / name
    # Made beside the inbox and renamed in: the daemon takes such an entry the moment it sees it.
    made = hostile.staging / name
    secret = make_non_regular(kind, made, hostile.root)
    if entry_type(made) == "symlink":  # remember the link as dropped, to compare with the rejected one
        (hostile.root / "original-links").mkdir()
        os.symlink(os.readlink(made), hostile.root / "original-links" / name)
    targets = targets_fingerprint(hostile.root)
    os.rename(made, entry)

    path, summary = hostile.wait_for_summary(name)

    assert_refused_as_not_regular(hostile, kind, name, path, summary, secret)
    assert targets_fingerprint(hostile.root) == targets, "a symlink's target was touched"
    hostile.assert_healthy()
    hostile.stop()


@pytest.mark.slow
def test_entries_that_are_not_regular_files_present_at_start_are_refused_too(hostile: HostileRun) -> None:
    """The start-up scan (and the rescans) refuse every kind of non-regular entry the same way, also the
    ones inotify never reports (a directory)."""
    for kind, name in NON_REGULAR_NAMES.items():
        make_non_regular(kind, hostile.inbox() / name, hostile.root)
    targets = targets_fingerprint(hostile.root)
    hostile.start()

    names = list(NON_REGULAR_NAMES.values())

    def outcomes() -> dict[str, tuple[object, object] | None]:
        found: dict[str, tuple[object, object] | None] = dict.fromkeys(names)
        for _, summary in hostile.all_summaries():
            if summary.get("input_file") in found:
                found[str(summary["input_file"])] = (summary["status"], summary["error_code"])
        return found

    with suppress(AssertionError):
        hostile.wait_until(lambda: None not in outcomes().values(), 15, "the summaries of every entry")
    assert outcomes() == dict.fromkeys(names, ("failed", NOT_REGULAR))
    assert sorted(os.listdir(hostile.inbox())) == ["validate"]  # its dry-run folder, empty
    assert not os.listdir(hostile.inbox() / "validate")
    assert targets_fingerprint(hostile.root) == targets
    hostile.assert_healthy()
    hostile.stop()


# --- an unreadable file -----------------------------------------------------------------------------


def assert_unreadable_for_the_daemon(path: Path) -> None:
    """The daemon started with ``without_file_permission_override`` cannot open ``path`` (even as root)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; open(sys.argv[1], 'rb')", str(path)],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=without_file_permission_override,
    )
    assert probe.returncode != 0 and "PermissionError" in probe.stderr, (
        "the test cannot make a file unreadable"
    )


@pytest.mark.slow
def test_an_unreadable_file_is_refused_with_file_unreadable(hostile: HostileRun) -> None:
    """A file the daemon may not read (mode 000) is refused with file-unreadable and moved to rejected/.

    As root (CI) the daemon runs without the capabilities that let root read any file, so that the mode
    counts; the test checks that first, so it can never pass by reading the file."""
    staged = hostile.staging / "locked.csv"
    staged.write_bytes(import_csv(("Lock", "Ed", "locked@example.org")))
    staged.chmod(0)
    assert_unreadable_for_the_daemon(staged)
    hostile.start(preexec=without_file_permission_override)

    os.rename(staged, hostile.inbox() / "locked.csv")
    path, summary = hostile.wait_for_summary("locked.csv")

    operation_id = int(summary["operation_id"])
    assert (summary["status"], summary["error_code"]) == ("failed", "file-unreadable"), summary
    assert path.name == f"locked.op{operation_id}.summary.json"
    assert hostile.operation_row(operation_id) == ("failed", "file-unreadable")
    assert hostile.output_path(summary, "errors").is_file()
    assert entry_type(hostile.outbox() / "rejected" / f"locked.op{operation_id}.csv") == "regular"
    assert hostile.count("users", "WHERE email = 'locked@example.org'") == 0
    hostile.assert_healthy()
    hostile.stop()


# --- names ------------------------------------------------------------------------------------------

HOSTILE_NAMES = (
    ("ascii-200-bytes", "a" * 196 + ".csv"),
    ("ascii-255-bytes", "b" * 251 + ".csv"),
    ("e-acute-255-bytes", "é" * 125 + "e.csv"),
    ("cjk-255-bytes", "病" * 83 + "ab.csv"),
    ("not-utf-8", os.fsdecode(b"bad\xff\xfe.csv")),
    ("newline", "line\nbreak.csv"),
    ("carriage-return", "carriage\rreturn.csv"),
    ("rtl-override", "invoice\u202evsc.csv"),
    ("backslash", "back\\slash.csv"),
    ("op-number-look-alike", "x.op1.csv"),
    ("bound-claim-look-alike", "op7__x.csv"),
    ("new-claim-look-alike", "new~a~b__c.csv"),
    ("glob-characters", "a[1]*?.csv"),
)


def test_the_hostile_names_are_what_they_claim() -> None:
    """The table above: lengths up to NAME_MAX, and which names are plain or keep their stem."""
    lengths = {label: len(os.fsencode(name)) for label, name in HOSTILE_NAMES}
    assert lengths["ascii-200-bytes"] == 200
    assert lengths["ascii-255-bytes"] == lengths["e-acute-255-bytes"] == lengths["cjk-255-bytes"] == NAME_MAX
    assert max(lengths.values()) <= NAME_MAX
    plain = {label for label, name in HOSTILE_NAMES if is_plain(name)}
    assert plain == {
        "ascii-200-bytes",
        "ascii-255-bytes",
        "e-acute-255-bytes",
        "cjk-255-bytes",
        "op-number-look-alike",
        "bound-claim-look-alike",
        "new-claim-look-alike",
        "glob-characters",
    }
    keeping = {label for label, name in HOSTILE_NAMES if keeps_its_stem(name)}
    assert keeping == plain - {"ascii-200-bytes", "ascii-255-bytes", "e-acute-255-bytes", "cjk-255-bytes"}


def assert_log_is_safe(log: bytes, name: str) -> None:
    """Every log record is one JSON line, and no raw newline or undecodable byte of ``name`` is in it."""
    for line in log.split(b"\n"):
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                pytest.fail(f"a log line is not one JSON record: {line[:200]!r}")
    raw = os.fsencode(name)
    risky = "\n" in name or "\r" in name or raw != name.encode("utf-8", "replace")
    if risky:
        assert raw not in log, "the raw name is in the log"


def check_hostile_name(run: HostileRun, number: int, name: str) -> None:
    """One hostile name: applied, summary by display name, safe outbox and archive names, safe log."""
    email = f"name-{number}@example.org"
    content = import_csv(("Nomen", f"Case{number}", email))
    trees = (run.root / "inbox", run.root / "outbox", run.root / "archive")
    before = entries_under(*trees)
    log_start = len(run.log_bytes())

    run.drop_by_rename(name, content)
    path, summary = run.wait_for_summary(expected_display(name))

    run.expect_applied(summary)
    operation_id = int(summary["operation_id"])
    stem, suffix = Path(name).stem, Path(name).suffix
    assert (summary["status"], summary["successful_records"], summary["failed_records"]) == (
        "completed",
        1,
        0,
    )
    assert run.count("users", f"WHERE email = '{email}'") == 1
    assert summary["outputs"]["summary"] == path.name
    assert run.output_path(summary, "result").is_file() and run.output_path(summary, "errors").is_file()
    if keeps_its_stem(name):
        assert path.name == f"{stem}.op{operation_id}.summary.json"
    run.wait_until(lambda: not os.path.lexists(run.inbox() / name), 3, "the file to leave the inbox")

    def archived() -> list[bytes]:
        return [entry for entry, data in regular_file_contents(run.root / "archive") if data == content]

    with suppress(AssertionError):  # the input is archived just after its summary is published
        run.wait_until(lambda: bool(archived()), 3, "the archived copy")
    assert len(archived()) == 1, f"{len(archived())} archived copies"
    if keeps_its_stem(name):
        assert os.path.basename(archived()[0]) == os.fsencode(f"{stem}.op{operation_id}{suffix}")
    assert bad_names_under(*trees, seen=before) == [], "names over 255 bytes or not UTF-8"
    run.assert_healthy()
    assert_log_is_safe(run.log_bytes()[log_start:], name)


@pytest.mark.slow
def test_every_hostile_name_is_processed_under_a_safe_display_name(
    hostile: HostileRun, subtests: Any
) -> None:
    """Names of 200 to 255 bytes (ASCII, é, 病), not valid UTF-8, with a newline, a carriage return, an RTL
    override or a backslash, looking like wardbulk's own names (x.op1.csv, op7__x.csv, new~a~b__c.csv), or
    with glob characters: each file is applied (completed) and its summary's input_file is its display
    name; plain names of at most 180 bytes keep their stem in outbox and archive names; every new name
    under inbox/, outbox/ and archive/ is valid UTF-8 of at most 255 bytes; the JSON log holds neither a
    raw newline nor an undecodable byte of a name."""
    hostile.start()
    for number, (label, name) in enumerate(HOSTILE_NAMES, start=1):
        with subtests.test(msg=label):
            try:
                check_hostile_name(hostile, number, name)
            except BaseException:
                hostile.restart_if_broken()  # so that the next names are judged on their own
                raise
    hostile.stop()


def test_display_name_escapes_what_would_mislead_a_reader() -> None:
    """display_name keeps printable names verbatim and escapes undecodable bytes as \\xNN, a backslash as
    \\\\, and control, format, separator, surrogate, private-use and unassigned characters as \\xNN,
    \\uXXXX or \\UXXXXXXXX."""
    from processor.core.names import display_name

    examples = [
        ("patients.csv", "patients.csv"),
        ("Müller 病院 ☃.csv", "Müller 病院 ☃.csv"),
        ("a[1]*?.csv", "a[1]*?.csv"),
        ("nbsp\u00a0space.csv", "nbsp\u00a0space.csv"),
        (os.fsdecode(b"bad\xff\xfe.csv"), "bad\\xff\\xfe.csv"),
        (os.fsdecode(b"half\xe9\x9f.csv"), "half\\xe9\\x9f.csv"),
        ("back\\slash.csv", "back\\\\slash.csv"),
        ("\\xff.csv", "\\\\xff.csv"),
        ("line\nbreak.csv", "line\\x0abreak.csv"),
        ("carriage\rreturn.csv", "carriage\\x0dreturn.csv"),
        ("tab\there.csv", "tab\\x09here.csv"),
        ("nul\x00.csv", "nul\\x00.csv"),
        ("esc\x1b[31m.csv", "esc\\x1b[31m.csv"),
        ("del\x7f.csv", "del\\x7f.csv"),
        ("nel\x85.csv", "nel\\x85.csv"),
        ("invoice\u202evsc.csv", "invoice\\u202evsc.csv"),
        ("zero\u200bwidth.csv", "zero\\u200bwidth.csv"),
        ("bom\ufeff.csv", "bom\\ufeff.csv"),
        ("line\u2028para\u2029.csv", "line\\u2028para\\u2029.csv"),
        ("private\ue000.csv", "private\\ue000.csv"),
        ("unassigned\u0378.csv", "unassigned\\u0378.csv"),
        ("lone\ud800.csv", "lone\\ud800.csv"),
        ("tag\U000e0001.csv", "tag\\U000e0001.csv"),
        ("plane15\U000f0000.csv", "plane15\\U000f0000.csv"),
    ]
    assert [(name, display_name(name)) for name, _ in examples] == examples


NAMES_WITH_UNDECODABLE_BYTES = st.lists(
    st.one_of(
        st.characters(),
        st.characters(categories=["Cs"]),
        st.integers(0x80, 0xFF).map(lambda byte: chr(0xDC00 + byte)),  # surrogateescape
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(name=NAMES_WITH_UNDECODABLE_BYTES)
def test_display_name_of_any_name_is_printable_utf_8_by_the_stated_rule(name: str) -> None:
    """For any name: the rule above, and a result that encodes to UTF-8 with none of those characters."""
    from processor.core.names import display_name

    display = display_name(name)
    assert display == expected_display(name)
    display.encode("utf-8")
    assert not [c for c in display if unicodedata.category(c) in ESCAPED_CATEGORIES]


# --- content ----------------------------------------------------------------------------------------

NUL_CSV = b"first_name,last_name,email\nA\x00na,Lee,nul-bad@example.org\nBo,Ok,nul-ok@example.org\n"


def check_random_bytes(run: HostileRun, operation: str) -> None:
    admissions = run.count("patient_admissions")
    content = os.urandom(64 * 1024)
    run.drop_by_rename("noise.csv", content, operation)
    path, summary = run.wait_for_summary("noise.csv", operation)
    operation_id = int(summary["operation_id"])
    assert summary["status"] == "failed", summary
    assert summary["error_code"] not in (None, "internal-error", "database-error"), summary
    assert path.name == f"noise.op{operation_id}.summary.json"
    assert run.output_path(summary, "errors").is_file()
    rejected = run.outbox(operation) / "rejected" / f"noise.op{operation_id}.csv"
    assert rejected.read_bytes() == content
    assert run.count("patient_admissions") == admissions
    run.assert_healthy()


def check_nul_byte(run: HostileRun) -> None:
    run.drop_by_rename("nul.csv", NUL_CSV)
    _, summary = run.wait_for_summary("nul.csv")
    run.expect_applied(summary)
    assert (summary["status"], summary["successful_records"], summary["failed_records"]) == (
        "completed",
        1,
        1,
    )
    assert "control-character" in summary["errors_by_code"], summary["errors_by_code"]
    assert run.count("users", "WHERE email LIKE 'nul-%'") == 1
    run.assert_healthy()


@pytest.mark.slow
def test_random_bytes_and_a_nul_byte_end_with_a_summary(hostile: HostileRun, subtests: Any) -> None:
    """64 KiB of random bytes in import_patients and in bulk_assignment are refused (a file-level code,
    not internal-error), nothing applied; a NUL byte in a cell fails that row (control-character) and the
    other row is applied."""
    hostile.start()
    cases = (
        ("random-bytes-import_patients", lambda: check_random_bytes(hostile, "import_patients")),
        ("random-bytes-bulk_assignment", lambda: check_random_bytes(hostile, "bulk_assignment")),
        ("nul-byte-in-a-cell", lambda: check_nul_byte(hostile)),
    )
    for label, check in cases:
        with subtests.test(msg=label):
            try:
                check()
            except BaseException:
                hostile.restart_if_broken()
                raise
    hostile.stop()


def big_import(rows: int, tag: str) -> bytes:
    lines = [f"First{i},Last{i},{tag}x{i}@example.org\n" for i in range(rows)]
    return (IMPORT_HEADER + "".join(lines)).encode()


def truncate_after_rename(run: HostileRun, name: str, content: bytes, *, delay: float) -> None:
    """Renamed in complete (ready at once), then cut to half through the sender's open handle."""
    staged = run.staging / name
    with staged.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.rename(staged, run.inbox() / name)
        time.sleep(delay)
        os.ftruncate(handle.fileno(), len(content) // 2)


def truncate_while_writing_slowly(run: HostileRun, name: str, content: bytes) -> None:
    """Written in place in ten parts, then cut to half before the sender closes it."""
    parts = [content[i : i + len(content) // 10 + 1] for i in range(0, len(content), len(content) // 10 + 1)]
    with (run.inbox() / name).open("wb") as handle:
        for part in parts:
            handle.write(part)
            handle.flush()
            time.sleep(0.03)
        os.ftruncate(handle.fileno(), len(content) // 2)


@pytest.mark.slow
def test_a_file_truncated_after_the_drop_is_applied_whole_or_not_at_all(hostile: HostileRun) -> None:
    """A 5,000-row import cut to half while the daemon may be reading it: completed or failed, but it has
    a summary, and the database holds either none of its rows or exactly the rows the summary reports."""
    hostile.start()
    drops: list[tuple[str, Callable[[str, bytes], None]]] = [
        (f"cut-{number}", partial(truncate_after_rename, hostile, delay=delay))
        for number, delay in enumerate((0.0, 0.02, 0.08, 0.25))
    ]
    drops.append(("cut-slow", partial(truncate_while_writing_slowly, hostile)))
    for tag, drop in drops:
        name = f"{tag}.csv"
        drop(name, big_import(5000, tag))
        _, summary = hostile.wait_for_summary(name, timeout=30)
        assert summary["status"] in ("completed", "failed"), summary
        assert summary["total_records"] == summary["successful_records"] + summary["failed_records"]
        applied = hostile.count("users", f"WHERE email LIKE '{tag}x%'")
        assert applied == (summary["successful_records"] if summary["status"] == "completed" else 0), (
            f"{name}: {applied} rows in the database, summary {summary['status']} with "
            f"{summary['successful_records']} successful"
        )
        hostile.expect_applied(summary)
        hostile.assert_healthy()
    hostile.stop()


@pytest.mark.slow
def test_a_file_deleted_right_after_the_drop_leaves_the_daemon_running(hostile: HostileRun) -> None:
    """A file removed by its sender right after dropping it needs no summary; the daemon lives on, and if
    it did take the file first, the file is applied whole as its summary says."""
    hostile.start()
    for number, delay in enumerate((0.0, 0.002, 0.02, 0.1)):
        name = f"gone-{number}.csv"
        dropped = hostile.drop_by_rename(
            name, import_csv(("Gone", f"N{number}", f"gone-{number}@example.org"))
        )
        time.sleep(delay)
        with suppress(FileNotFoundError):
            dropped.unlink()
        hostile.wait_until(
            lambda name=name: (
                not os.path.lexists(hostile.inbox() / name) and not hostile.leftovers_in_processing()
            ),
            5,
            f"{name} gone from the inbox and the processing area",
        )
        for _, summary in hostile.all_summaries():
            if summary.get("input_file") == name:
                hostile.expect_applied(summary)
        hostile.assert_healthy()
    hostile.stop()


# --- `wardbulk process` given something that is not a regular file --------------------------------


def cli_env(root: Path, database_url: str) -> dict[str, str]:
    return {
        "WARDBULK_DATABASE_URL": database_url,
        "WARDBULK_INBOX_DIR": str(root / "inbox"),
        "WARDBULK_OUTBOX_DIR": str(root / "outbox"),
        "WARDBULK_ARCHIVE_DIR": str(root / "archive"),
        "WARDBULK_LOG_FORMAT": "json",
    }


def scalar(database_url: str, sql: str) -> Any:
    engine = build_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["symlink", "fifo", "dev-zero"])
def test_process_refuses_a_file_that_is_not_regular_at_once(
    tmp_path: Path, empty_database_url: str, kind: str
) -> None:
    """`wardbulk process FILE` given a symlink (to a valid CSV), a FIFO or /dev/zero returns promptly,
    exits 1 and writes a summary with not-a-regular-file; a link's target is untouched and unread."""
    env = cli_env(tmp_path, empty_database_url)
    init_workspace(tmp_path, env)
    target = tmp_path / "outside" / "patients.csv"
    target.parent.mkdir()
    target.write_bytes(SECRET_CSV)
    before = fingerprint(target)
    if kind == "symlink":
        given_file = tmp_path / "linked.csv"
        os.symlink(target, given_file)
    elif kind == "fifo":
        given_file = tmp_path / "pipe.csv"
        os.mkfifo(given_file)
    else:
        given_file = Path("/dev/zero")

    result = run_command(
        "process", str(given_file), "--operation", "import_patients", cwd=tmp_path, env=env, timeout=PROMPT_S
    )

    assert result.returncode == 1, f"exit {result.returncode}: {result.stdout} {result.stderr[-600:]}"
    outbox = tmp_path / "outbox" / "import_patients"
    summaries = [json.loads(p.read_bytes()) for p in outbox.glob("*.summary.json")]
    assert [(s["input_file"], s["status"], s["error_code"]) for s in summaries] == [
        (given_file.name, "failed", NOT_REGULAR)
    ]
    operation_id = int(summaries[0]["operation_id"])
    assert scalar(
        empty_database_url, f"SELECT error_code FROM bulk_operations WHERE id = {operation_id}"
    ) == (NOT_REGULAR)
    assert scalar(empty_database_url, "SELECT count(*) FROM patients") == 0
    assert fingerprint(target) == before
    assert files_containing(SECRET_EMAIL.encode(), tmp_path / "outbox", tmp_path / "archive") == []
    assert [
        os.fsdecode(p) for p in entries_under(tmp_path / "inbox" / ".processing") if not os.path.isdir(p)
    ] == []
    assert entry_type(given_file) == {"symlink": "symlink", "fifo": "fifo", "dev-zero": "other"}[kind]


# --- a fuzzer over CSV structure (in-process) -------------------------------------------------------

KNOWN_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "patient_id",
    "phone",
    "date_of_birth",
    "gender",
    "caregiver_name",
    "caregiver_email",
    "caregiver_phone",
)
REQUIRED_COLUMNS = KNOWN_COLUMNS[:3]
UNKNOWN_COLUMNS = ("notes", "ward", "")
TRICKY_CELLS = (
    "a,b",
    "a;b",
    'say "hi"',
    '"',
    "two\nlines",
    "cr\r\nlf",
    "lone\rcr",
    "  padded  ",
    "trailing ",
    "=1+1",
    "",
    " ",
    "\x00",
    "\t",
    "é",
    "病院",
    "\u202e",
    "\ufeff",
    "\u2028",
    "x" * 300,
)
GOOD_CELLS: dict[str, st.SearchStrategy[str]] = {
    "first_name": st.sampled_from(["Ana", "Bo", "Zoë", "Łukasz", "李"]),
    "last_name": st.sampled_from(["Lee", "O'Brien", "Müller", "van der Berg"]),
    "email": st.integers(0, 40).map(lambda n: f"fz{n}@example.org"),
    "patient_id": st.integers(0, 40).map(lambda n: f"{n:06d}"),
    "phone": st.sampled_from(["555-0101", "+44 (20) 7946 0000", "call me"]),
    "date_of_birth": st.sampled_from(["1980-05-15", "2999-01-01", "15/05/1980", ""]),
    "gender": st.sampled_from(["M", "f", "O", "U", "x", ""]),
    "caregiver_name": st.sampled_from(["", "John Doe"]),
    "caregiver_email": st.sampled_from(["", "care@example.org", "nope"]),
    "caregiver_phone": st.sampled_from(["", "555-0102"]),
}
RANDOM_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@st.composite
def header_labels(draw: st.DrawFn) -> list[str]:
    """Mostly usable headers in any order; sometimes missing or repeated labels; random case and spaces."""
    if draw(st.integers(0, 3)):
        optional = draw(
            st.lists(st.sampled_from(KNOWN_COLUMNS[3:] + UNKNOWN_COLUMNS), unique=True, max_size=5)
        )
        names = list(draw(st.permutations([*REQUIRED_COLUMNS, *optional])))
    else:
        names = draw(st.lists(st.sampled_from(KNOWN_COLUMNS + UNKNOWN_COLUMNS), max_size=8))
    labels = []
    for name in names:
        shape = draw(st.sampled_from([str.lower, str.upper, str.title]))
        labels.append(draw(st.sampled_from(["", " ", "  "])) + shape(name) + draw(st.sampled_from(["", " "])))
    return labels


@st.composite
def cell_for(draw: st.DrawFn, label: str) -> str:
    choice = draw(st.integers(0, 5))
    if choice <= 3 and label.strip().lower() in GOOD_CELLS:
        return draw(GOOD_CELLS[label.strip().lower()])
    if choice == 4:
        return draw(st.sampled_from(TRICKY_CELLS))
    return draw(RANDOM_TEXT)


@st.composite
def import_files(draw: st.DrawFn) -> bytes:
    """import_patients files built from their structure: header, rows (ragged at times), blank lines,
    delimiter, quoting, line ends, BOM, encoding, and now and then a stray quote, a cut or stray bytes."""
    labels = draw(header_labels())
    delimiter = draw(st.sampled_from([",", ";"]))
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=delimiter,
        lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
    )
    writer.writerow(labels)
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 5)) == 0:
            buffer.write(draw(st.sampled_from(["", "  ", delimiter * 3])) + "\n")
        row = [draw(cell_for(label)) for label in labels]
        ragged = draw(st.sampled_from([0, 0, 0, 0, -1, 1, -2, 2]))
        row = row[:ragged] if ragged < 0 else row + [draw(RANDOM_TEXT) for _ in range(ragged)]
        writer.writerow(row)
    content = buffer.getvalue()
    damage = draw(st.sampled_from(["none"] * 6 + ["stray-quote", "cut", "stray-bytes"]))
    at = draw(st.integers(0, len(content)))
    if damage == "stray-quote":
        content = content[:at] + '"' + content[at:]
    elif damage == "cut":
        content = content[:at]
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    data = content.encode(encoding, errors="replace")
    if damage == "stray-bytes":
        at = min(at, len(data))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data


def physical_lines(data: bytes) -> int:
    """Lines as the input has them (split at LF; header = 1)."""
    return max(1, data.count(b"\n") + (0 if data.endswith(b"\n") else 1))


@pytest.fixture
def fuzz_target(tmp_path: Path, database: Database) -> tuple[Workspace, Pipeline, Iterator[int]]:
    workspace = make_workspace(tmp_path, database)
    (tmp_path / "drops").mkdir()
    return workspace, workspace.pipeline(), itertools.count(1)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(content=import_files())
def test_any_import_file_is_applied_whole_or_refused_with_a_summary(
    fuzz_target: tuple[Workspace, Pipeline, Iterator[int]], content: bytes
) -> None:
    """Whatever its structure, a file never makes the pipeline raise: it is completed or failed (never an
    internal error), its summary says total = successful + failed, the database gains exactly the
    successful rows (none when failed), every errors.csv line is empty or a physical line of the input,
    and inbox/.processing/ is empty afterwards."""
    workspace, pipeline, numbers = fuzz_target
    source = workspace.root / "drops" / f"fuzz-{next(numbers)}.csv"
    source.write_bytes(content)
    before = (
        workspace.scalar("SELECT count(*) FROM patients"),
        workspace.scalar(PATIENT_USERS_SQL),
    )

    claimed = inbox.copy_in(workspace.inbox, source, OperationType.IMPORT_PATIENTS, "fuzzer", this_process())
    outcome = process_claimed(pipeline, claimed)

    assert outcome.status in (OperationStatus.COMPLETED, OperationStatus.FAILED)
    assert outcome.summary is not None
    summary = json.loads(outcome.summary.read_bytes())
    assert summary["status"] == outcome.status.value
    assert summary["error_code"] != "internal-error", summary["error_message"]
    assert summary["total_records"] == summary["successful_records"] + summary["failed_records"]
    after = (
        workspace.scalar("SELECT count(*) FROM patients"),
        workspace.scalar(PATIENT_USERS_SQL),
    )
    gained = summary["successful_records"] if outcome.status == OperationStatus.COMPLETED else 0
    assert (after[0] - before[0], after[1] - before[1]) == (gained, gained)
    errors = workspace.outbox / "import_patients" / summary["outputs"]["errors"]
    lines = physical_lines(content)
    bad_lines = [
        row["line"] for row in error_rows(errors) if row["line"] and not 1 <= int(row["line"]) <= lines
    ]
    assert bad_lines == [], f"errors.csv lines outside 1..{lines}"
    processing = workspace.inbox / ".processing"
    assert [os.fsdecode(p) for p in entries_under(processing) if not os.path.isdir(p)] == []

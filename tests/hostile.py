"""Helpers of the hostile-inbox tests (tests/test_hostile_inbox.py).

``HostileRun`` is the ``DaemonRun`` of tests/test_daemon_e2e.py with what these tests check after every
hostile entry: the daemon still runs, ``inbox/.processing/`` is empty, a valid file dropped next completes
within seconds, and the ward tables hold exactly the rows that summaries say were applied.

``expected_display`` mirrors the display-name rule of the contract (``processor.core.names.display_name``),
so that summaries can be found by their ``input_file`` before that module exists.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.test_daemon_e2e import DaemonRun

SUMMARY_TIMEOUT_S = 10.0  # a hostile entry's summary (stability window 1 s, rescans every second)
CANARY_TIMEOUT_S = 5.0  # the contract: a valid file dropped after a hostile entry completes within 5 s
SETTLE_TIMEOUT_S = 3.0  # the input moved on and leftovers removed, after its summary appeared
STOP_TIMEOUT_S = 30.0
NAME_MAX = 255
IMPORT_HEADER = "first_name,last_name,email\n"
# The user accounts of patients (each operation's initiator also gets a User row, without an e-mail).
PATIENT_USERS = ("users", "WHERE email IS NOT NULL")

# Unicode categories the display name escapes: controls, formats, line and paragraph separators,
# surrogates, private use and unassigned code points.
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
PLAIN_STEM_MAX_BYTES = 180
PLAIN_SUFFIX_MAX_BYTES = 16

# Every process these tests start may write at most this much per file: a daemon or command that copies
# /dev/zero fails with EFBIG instead of filling the disk.
FILE_SIZE_LIMIT = 256 * 1024 * 1024
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2


# --- names ------------------------------------------------------------------------------------------


def expected_display(name: str) -> str:
    """The contract's display name: undecodable bytes (surrogateescape) as ``\\xNN``, a backslash as
    ``\\\\``, characters of ``ESCAPED_CATEGORIES`` as ``\\xNN``, ``\\uXXXX`` or ``\\UXXXXXXXX``
    (lower-case hex, as Python's ``backslashreplace``); everything else verbatim."""
    return "".join(_displayed(character) for character in name)


def _displayed(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name, decoded with surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if character == "\\":
        return "\\\\"
    if unicodedata.category(character) not in ESCAPED_CATEGORIES:
        return character
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def is_plain(name: str) -> bool:
    return expected_display(name) == name


def keeps_its_stem(name: str) -> bool:
    """Whether the outbox names of an input keep its stem (else they use a derived stem)."""
    path = Path(name)
    return (
        is_plain(name)
        and len(path.stem.encode()) <= PLAIN_STEM_MAX_BYTES
        and len(path.suffix.encode()) <= PLAIN_SUFFIX_MAX_BYTES
    )


def bad_names_under(*roots: Path, seen: set[bytes] | None = None) -> list[bytes]:
    """Entry names under ``roots`` longer than NAME_MAX or not valid UTF-8 (only those not in ``seen``)."""
    bad = []
    for entry in entries_under(*roots):
        if seen is not None and entry in seen:
            continue
        name = os.path.basename(entry)
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(entry)
            continue
        if len(name) > NAME_MAX:
            bad.append(entry)
    return bad


def entries_under(*roots: Path) -> set[bytes]:
    """Every path (as bytes) below ``roots``, symbolic links not followed."""
    found: set[bytes] = set()
    for root in roots:
        for folder, dirs, files in os.walk(os.fsencode(root)):
            found.update(os.path.join(folder, name) for name in (*dirs, *files))
    return found


def regular_file_contents(*roots: Path) -> Iterator[tuple[bytes, bytes]]:
    """(path, bytes) of every regular file below ``roots``; links, FIFOs and devices are not opened."""
    for entry in sorted(entries_under(*roots)):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(entry).st_mode):
                yield entry, Path(os.fsdecode(entry)).read_bytes()


# --- processes --------------------------------------------------------------------------------------


def limit_file_size() -> None:
    """In a child about to exec: cap the size of any file it writes (see ``FILE_SIZE_LIMIT``)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def without_file_permission_override() -> None:
    """In a child about to exec: make file modes count, as for any unprivileged daemon.

    Root reads a mode-000 file through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH; dropping both from the
    bounding set before exec leaves the new program without them (as root it keeps its owner's rights).
    Tests run as root in CI, whose interpreter lives under /root (mode 0700), so switching to another
    user (nobody) could not even start Python there.
    """
    limit_file_size()
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_CAPBSET_DROP, {capability}): {os.strerror(error)}")


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_command(*args: str, cwd: Path, env: dict[str, str], timeout: float) -> Completed:
    """``wardbulk ARGS`` in a subprocess, file sizes capped; a hang is a test failure, not a stuck run."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WARDBULK_")} | env
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "processor", *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=limit_file_size,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`wardbulk {' '.join(args)}` did not return within {timeout} s") from None
    return Completed(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


# --- the daemon -------------------------------------------------------------------------------------


def import_csv(*rows: tuple[str, str, str]) -> bytes:
    """A small import_patients file: ``first_name,last_name,email`` and the rows."""
    return (IMPORT_HEADER + "".join(f"{first},{last},{email}\n" for first, last, email in rows)).encode()


class HostileRun(DaemonRun):
    """A daemon fed hostile entries, checked for health after each one."""

    def __init__(self, root: Path, database_url: str, **settings: str) -> None:
        super().__init__(root, database_url, **settings)
        self.staging = root / "staging"  # same file system: a rename from here arrives at once
        self.staging.mkdir()
        self.canaries = 0
        self.expected_patients = self.count("patients")
        self.expected_users = self.count(*PATIENT_USERS)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.processes[-1]

    def start(self, *args: str, preexec: Callable[[], None] = limit_file_size) -> subprocess.Popen[bytes]:
        """``wardbulk run`` (as ``DaemonRun.start``), ``preexec`` run in the child before exec."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WARDBULK_")} | self.env
        before = self.log_bytes().count(b"daemon_watching")
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "processor", "run", *args],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=log,
                preexec_fn=preexec,  # noqa: PLW1509  (setrlimit and prctl only: no locks taken)
            )
        self.processes.append(process)
        self.wait_until(lambda: self.log_bytes().count(b"daemon_watching") > before, 30, "daemon watching")
        return process

    def stop(self) -> None:
        """SIGTERM: the daemon stops and exits 0."""
        self.process.send_signal(signal.SIGTERM)
        try:
            returncode = self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not stop within {STOP_TIMEOUT_S} s of SIGTERM") from None
        assert returncode == 0, f"the daemon exited {returncode} on SIGTERM; log tail: {self.log_tail()}"

    def log_bytes(self) -> bytes:
        return self.log.read_bytes() if self.log.exists() else b""

    def log_tail(self, lines: int = 8) -> str:
        return "\n".join(self.log_bytes().decode("utf-8", "backslashreplace").splitlines()[-lines:])

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait for ``condition``; fail at once if the daemon has exited."""
        deadline = time.monotonic() + timeout
        while True:
            if condition():
                return
            if self.processes and self.process.poll() is not None:
                raise AssertionError(
                    f"the daemon exited ({self.process.returncode}) while waiting for {what}; "
                    f"log tail:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.05)

    # --- outbox ---

    def outbox(self, operation: str = "import_patients") -> Path:
        return self.root / "outbox" / operation

    def processing(self) -> Path:
        return self.root / "inbox" / ".processing"

    def all_summaries(self, operation: str = "import_patients") -> list[tuple[Path, dict[str, Any]]]:
        found = []
        for path in self.outbox(operation).glob("*.summary.json"):
            with contextlib.suppress(FileNotFoundError):
                found.append((path, json.loads(path.read_bytes())))
        return found

    def summary_of(self, input_file: str, operation: str = "import_patients") -> tuple[Path, dict[str, Any]]:
        """The summary whose ``input_file`` is ``input_file``: there must be exactly one."""
        matches = [(p, s) for p, s in self.all_summaries(operation) if s.get("input_file") == input_file]
        assert len(matches) == 1, f"{len(matches)} summaries with input_file {input_file!r}: {matches}"
        return matches[0]

    def wait_for_summary(
        self, input_file: str, operation: str = "import_patients", timeout: float = SUMMARY_TIMEOUT_S
    ) -> tuple[Path, dict[str, Any]]:
        """Wait for the summary naming ``input_file``, then for its input to have moved on (to the archive
        or rejected/: that follows the summary's publication); on a timeout, say which summaries did appear."""
        before = {path for path, _ in self.all_summaries(operation)}
        try:
            self.wait_until(
                lambda: any(s.get("input_file") == input_file for _, s in self.all_summaries(operation)),
                timeout,
                f"a summary with input_file {input_file!r} in outbox/{operation}/",
            )
        except AssertionError as exc:
            others = [s.get("input_file") for p, s in self.all_summaries(operation) if p not in before]
            raise AssertionError(f"{exc}; other new summaries name: {others!r}") from None
        self.wait_until(lambda: not self.leftovers_in_processing(), SETTLE_TIMEOUT_S, "the input moved on")
        return self.summary_of(input_file, operation)

    def output_path(self, summary: dict[str, Any], kind: str) -> Path:
        """An output the summary names (``result``, ``errors``, ``summary``), in its outbox folder."""
        return self.outbox(str(summary["operation_type"])) / str(summary["outputs"][kind])

    def operation_row(self, operation_id: int) -> tuple[object, object]:
        status = self.scalar(f"SELECT status FROM bulk_operations WHERE id = {int(operation_id)}")
        code = self.scalar(f"SELECT error_code FROM bulk_operations WHERE id = {int(operation_id)}")
        return status, code

    def count(self, table: str, where: str = "") -> int:
        value = self.scalar(f"SELECT count(*) FROM {table} {where}")
        assert isinstance(value, int), value
        return value

    # --- dropping ---

    def drop_by_rename(self, name: str, content: bytes, operation: str = "import_patients") -> Path:
        """Write the file in staging/, then rename it into inbox/<operation>/ (any name up to NAME_MAX)."""
        staged = self.staging / name
        staged.write_bytes(content)
        target = self.inbox(operation) / name
        os.rename(staged, target)
        return target

    def expect_applied(self, summary: dict[str, Any]) -> None:
        """Count the summary's applied rows in the rows the database must hold."""
        if summary["status"] == "completed" and summary["operation_type"] == "import_patients":
            self.expected_patients += int(summary["successful_records"])
            self.expected_users += int(summary["successful_records"])

    # --- health ---

    def leftovers_in_processing(self) -> list[str]:
        """Whatever is under inbox/.processing/ besides its per-operation folders."""
        top = self.processing()
        if not top.exists():
            return []
        left = []
        for entry in entries_under(top):
            relative = os.path.relpath(entry, os.fsencode(top))
            if os.sep.encode() in relative or not os.path.isdir(entry) or os.path.islink(entry):
                left.append(os.fsdecode(relative))
        return sorted(left)

    def assert_processing_empty(self) -> None:
        try:
            self.wait_until(lambda: not self.leftovers_in_processing(), SETTLE_TIMEOUT_S, "empty .processing")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: inbox/.processing/ holds {self.leftovers_in_processing()!r}"
            ) from None

    def assert_rows_as_summaries_say(self) -> None:
        """Nothing half-applied: patients and users are exactly the rows that summaries report applied."""
        found = (self.count("patients"), self.count(*PATIENT_USERS))
        expected = (self.expected_patients, self.expected_users)
        assert found == expected, f"(patients, users) in the database {found}, by the summaries {expected}"

    def drop_canary(self) -> tuple[Path, dict[str, Any]]:
        """A small valid import dropped the safe way (``x.csv.tmp`` renamed to ``x.csv``): completed."""
        self.canaries += 1
        name = f"canary-{self.canaries}.csv"
        staged = self.inbox() / f"{name}.tmp"
        staged.write_bytes(import_csv(("Cana", "Ry", f"canary-{self.canaries}@example.org")))
        staged.rename(self.inbox() / name)
        path, summary = self.wait_for_summary(name, timeout=CANARY_TIMEOUT_S)
        outcome = (summary["status"], summary["successful_records"])
        assert outcome == ("completed", 1), f"the valid file after a hostile one: {summary}"
        self.expect_applied(summary)
        return path, summary

    def assert_healthy(self) -> None:
        """After a hostile entry: alive, nothing left in .processing/, the next file completes, no half rows."""
        assert self.process.poll() is None, (
            f"the daemon exited ({self.process.returncode}): {self.log_tail()}"
        )
        self.assert_processing_empty()
        self.assert_rows_as_summaries_say()
        self.drop_canary()
        self.assert_processing_empty()
        self.assert_rows_as_summaries_say()

    def restart_if_broken(self) -> None:
        """After a failed case of a shared run: kill a dead or stuck daemon, set its entries aside, restart.

        So that one case's failure does not fail the next ones (their own assertions still run in full).
        """
        if self.process.poll() is None and self._canary_gets_through():
            return
        self.process.kill()
        self.process.wait()
        quarantine = self.root / "quarantine" / str(len(self.processes))
        folders = [p for p in (self.root / "inbox").iterdir() if p.name != ".processing"]
        for folder in (*folders, *self.processing().glob("*")):
            for number, entry in enumerate(os.scandir(folder)):
                aside = quarantine / folder.name / str(number)  # keeps a name of NAME_MAX bytes as it is
                aside.mkdir(parents=True)
                os.rename(entry.path, aside / entry.name)
        self.expected_patients, self.expected_users = self.count("patients"), self.count(*PATIENT_USERS)
        self.start()

    def _canary_gets_through(self) -> bool:
        try:
            self.assert_processing_empty()
            self.drop_canary()
        except AssertionError:
            return False
        self.expected_patients, self.expected_users = self.count("patients"), self.count(*PATIENT_USERS)
        return True


def init_workspace(root: Path, env: dict[str, str]) -> None:
    result = run_cli("init", cwd=root, env=env)
    assert result.returncode == 0, result.stderr

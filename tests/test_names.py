"""Entry names of any bytes and length: how people see them, and the names wardbulk builds from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.adapters.inbox import claim_name
from processor.adapters.outbox import OutboxFiles
from processor.core.names import (
    MAX_STEM_BYTES,
    NAME_MAX,
    display_name,
    fitted_name,
    is_plain,
    outbox_stem,
    outbox_suffix,
)
from processor.core.operation_kinds import OperationType

LONGEST_OWNER = f"{'h' * 64}:4194304:18446744073709551615:4026531836"  # HOST_NAME_MAX, pid_max, …
LARGEST_ID = 2**63 - 1
OUTBOX = Path("/outbox")  # only named here, never written


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("patients.csv", "patients.csv"),
        ("Müller 病院 ü.csv", "Müller 病院 ü.csv"),
        (os.fsdecode(b"bad\xff\xfe.csv"), "bad\\xff\\xfe.csv"),
        ("line\nbreak\r.csv", "line\\x0abreak\\x0d.csv"),
        ("rtl\u202egpj.csv", "rtl\\u202egpj.csv"),
        ("zero\u200bwidth.csv", "zero\\u200bwidth.csv"),
        ("back\\slash.csv", "back\\\\slash.csv"),
        ("tab\t.csv", "tab\\x09.csv"),
        ("sep\u2028.csv", "sep\\u2028.csv"),
    ],
)
def test_display_name_escapes_what_would_be_misshown_and_keeps_the_rest(name: str, shown: str) -> None:
    """Undecodable bytes, controls, bidi and other format characters, separators and the backslash are
    escaped; letters of any script are shown as they are."""
    assert display_name(name) == shown
    assert is_plain(name) == (name == shown)


@given(st.binary(min_size=1, max_size=40), st.binary(min_size=1, max_size=40))
def test_display_names_of_different_names_differ(first: bytes, second: bytes) -> None:
    """Two different names never display alike (the display name identifies the entry)."""
    if first != second:
        assert display_name(os.fsdecode(first)) != display_name(os.fsdecode(second))


@given(st.binary(min_size=1, max_size=NAME_MAX).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_every_name_wardbulk_builds_fits_name_max_and_is_valid_utf8(raw: bytes) -> None:
    """Whatever an entry's name, the claim, outbox, partial and archive names built from it fit NAME_MAX
    with the longest owner and operation id, and the outbox ones are valid UTF-8."""
    name = os.fsdecode(raw)
    claimed = claim_name(LONGEST_OWNER, name)
    assert len(os.fsencode(claimed)) <= NAME_MAX
    shown = display_name(name)
    files = OutboxFiles.for_operation(OUTBOX, OperationType.IMPORT_PATIENTS, shown, LARGEST_ID, "0123456789")
    for kind in OutboxFiles.ALL_KINDS:
        for path in (files.final(kind), files.partial(kind)):
            assert len(path.name.encode("utf-8")) + len(".rewrite") <= NAME_MAX
    moved = f"{outbox_stem(shown)}.op{LARGEST_ID}{outbox_suffix(shown)}"
    assert len(moved.encode("utf-8")) <= NAME_MAX


def test_a_plain_short_name_keeps_its_stem_in_the_outbox() -> None:
    """The outbox contract: ``<stem>.op<N>.summary.json`` for the names senders really use."""
    assert outbox_stem("admissions 2026-12-02.csv") == "admissions 2026-12-02"
    assert outbox_stem("x.op1.csv") == "x.op1"
    assert outbox_stem("a[1]*?.csv") == "a[1]*?"
    assert outbox_stem("s" * MAX_STEM_BYTES + ".csv") == "s" * MAX_STEM_BYTES


def test_a_long_or_escaped_name_gets_a_derived_stem_that_stays_readable_and_unique() -> None:
    """Too long, or not plain: the readable part, cut, plus a hash of the whole display name."""
    long_stem = outbox_stem("s" * (MAX_STEM_BYTES + 1) + ".csv")
    other_long_stem = outbox_stem("s" * (MAX_STEM_BYTES + 2) + ".csv")
    assert long_stem.startswith("s" * 100 + "~")
    assert long_stem != other_long_stem
    escaped = outbox_stem(display_name("night\nshift.csv"))
    assert escaped.startswith("night_x0ashift~")
    assert "\n" not in escaped and "\\" not in escaped
    assert outbox_stem(display_name("病" * 80 + ".csv")).startswith("病" * 33 + "~")


def test_fitted_name_keeps_raw_bytes_that_fit_and_derives_the_rest() -> None:
    """The processing area keeps an entry's own name when it fits (so it can go back unchanged)."""
    undecodable = os.fsdecode(b"bad\xff.csv")
    assert fitted_name(undecodable, 100) == undecodable
    fitted = fitted_name("n" * 200 + ".csv", 120)
    assert len(fitted.encode("utf-8")) <= 120
    assert fitted.endswith(".csv")

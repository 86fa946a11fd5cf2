"""Names of inbox entries, whatever bytes they hold, as people see them and as wardbulk's files use them.

A name on a shared drive is any byte string up to NAME_MAX (255) bytes without ``/`` or NUL: it may be
invalid UTF-8 (Python hands such bytes over as lone surrogates, ``os.fsdecode``'s surrogateescape), hold
newlines, carriage returns, bidirectional overrides that reverse how a page shows it, or be so long that
nothing can be added to it. Two views of a name make every one of them safe:

- ``display_name``: the name as text for people and databases (logs, summary.json, the BulkOperation,
  the dashboard). Escapes what a terminal, a log line, a JSON consumer or a browser would mis-show, and
  is injective: two different names never display alike.
- ``outbox_stem`` and ``fitted_name``: the stem and the name wardbulk builds its own file names from.
  A plain, short name is kept as it is (the outbox contract: ``<stem>.op<N>.summary.json``); any other
  becomes a derived name, its readable characters cut to a byte budget plus a short hash of the full
  display name, so that it fits NAME_MAX with everything wardbulk appends and stays unique.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import PurePath

NAME_MAX = 255
# The longest stem kept as it is. The longest name built from a stem is a partial of a notification
# file being rewritten: ``.<stem>.op<N>.notifications.csv.<token>.partial`` plus ``.rewrite``, about 70
# bytes with a 19-digit operation id; 180 leaves room for that within NAME_MAX.
MAX_STEM_BYTES = 180
MAX_SUFFIX_BYTES = 16
DERIVED_STEM_BYTES = 100
HASH_CHARS = 8
# Characters that would be mis-shown or act: controls (Cc), formats such as the bidi overrides (Cf),
# line and paragraph separators (Zl, Zp), surrogates (Cs: undecodable bytes), private-use (Co) and
# unassigned (Cn) code points.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_UNREADABLE_RUN = re.compile(r"[^\w.\-]+")


def display_name(name: str) -> str:
    """``name`` with undecodable bytes as ``\\xNN``, a backslash as ``\\\\`` and control, format and
    separator characters as ``\\xNN``, ``\\uXXXX`` or ``\\UXXXXXXXX``; every other character as it is."""
    if name.isprintable() and "\\" not in name:
        return name  # the usual name: one C-level scan
    return "".join(_escaped(character) for character in name)


def _escaped(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape carries it
        return f"\\x{code - 0xDC00:02x}"
    if character == "\\":
        return "\\\\"
    if unicodedata.category(character) not in _ESCAPED_CATEGORIES:
        return character
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def is_plain(name: str) -> bool:
    """True when ``name`` needs no escaping: valid UTF-8, nothing hidden or acting in it."""
    return display_name(name) == name


def _utf8_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _cut(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, never inside a character."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def _readable(text: str, max_bytes: int) -> str:
    """The word characters, dots and hyphens of ``text`` (each other run as ``_``), cut to ``max_bytes``."""
    return _cut(_UNREADABLE_RUN.sub("_", text), max_bytes)


def _fingerprint(display: str) -> str:
    return hashlib.sha256(display.encode("utf-8")).hexdigest()[:HASH_CHARS]


def outbox_stem(display: str) -> str:
    """The stem of the outbox files of an input whose display name is ``display``.

    The input's own stem when its name is plain with a stem of at most ``MAX_STEM_BYTES`` and a suffix of
    at most ``MAX_SUFFIX_BYTES``; otherwise ``<readable part>~<hash>``, at most 109 bytes. Depends on the
    display name alone, so recovery (which knows it from the database) finds the same files.
    """
    path = PurePath(display)
    if "\\" not in display and _fits(path.stem, path.suffix):
        return path.stem
    return f"{_readable(path.stem, DERIVED_STEM_BYTES)}~{_fingerprint(display)}"


def outbox_suffix(display: str) -> str:
    """The suffix kept on moved inputs (archive, rejected): the input's own when short and plain."""
    suffix = PurePath(display).suffix
    if "\\" not in suffix and _utf8_length(suffix) <= MAX_SUFFIX_BYTES:
        return suffix
    return _readable(suffix, MAX_SUFFIX_BYTES)


def _fits(stem: str, suffix: str) -> bool:
    return _utf8_length(stem) <= MAX_STEM_BYTES and _utf8_length(suffix) <= MAX_SUFFIX_BYTES


def fitted_name(name: str, max_bytes: int) -> str:
    """``name`` itself when it has at most ``max_bytes`` bytes; else a derived name that does.

    For names of wardbulk's own working files that must carry an entry's name (its claimed copy in the
    processing area). Raw bytes are kept where they fit: only the length is the problem there.
    """
    if _utf8_length(name) <= max_bytes:
        return name
    display = display_name(name)
    suffix = outbox_suffix(display)
    room = max_bytes - len(suffix.encode("utf-8")) - HASH_CHARS - 1
    return f"{_readable(PurePath(display).stem, room)}~{_fingerprint(display)}{suffix}"

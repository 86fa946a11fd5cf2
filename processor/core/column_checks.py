"""Chunk-wide checks of one column's trimmed cells, for the operations' fast paths.

Each takes a column (one ``str`` per row of a chunk) and answers with the indexes of the rows the row
model might not accept. The common answer is "none", found with one pass of C functions over the column
(``map``, ``min``, ``max``, one ``encode``); only a column that holds a doubtful cell is walked in Python
to say which rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from re import Pattern


def column_of(cells: Sequence[Mapping[str, str]], name: str) -> list[str]:
    """The column ``name`` of a chunk's records' cells, "" where a record has no such cell (a column the
    file lacks, a short row): each record is asked for itself, whatever the others hold."""
    try:
        return list(map(itemgetter(name), cells))
    except KeyError:
        return [row.get(name, "") for row in cells]


def outside(values: list[str], shortest: int, longest: int) -> set[int]:
    """The rows whose value's length (characters, as pydantic counts them) is not within the bounds."""
    lengths = list(map(len, values))
    if min(lengths, default=shortest) >= shortest and max(lengths, default=longest) <= longest:
        return set()
    return {index for index, length in enumerate(lengths) if not shortest <= length <= longest}


def failing(values: list[str], pattern: Pattern[str], required: bool) -> set[int]:
    """The rows whose value does not match ``pattern`` (an empty optional value needs no match)."""
    hits = list(map(pattern.match, values))
    if all(hits):
        return set()
    return {
        index
        for index, (value, hit) in enumerate(zip(values, hits, strict=True))
        if not hit and (value or required)
    }


def not_unicode(values: list[str]) -> set[int]:
    """The rows whose value holds a lone surrogate (an undecodable byte carried as such): pydantic
    refuses it as text (``string_unicode``) whatever the column's other rules say."""
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        return {index for index, value in enumerate(values) if not _encodes(value)}
    return set()


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

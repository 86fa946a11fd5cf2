"""Excel-safe cells (OWASP CSV injection): a text cell that Excel would run as a formula is neutralised.

Only what wardbulk writes is changed; the database keeps the raw value. A cell that is plainly a signed
number (``-12.5``, ``+3``) or a phone number written with digits, spaces and parentheses after a plus
(``+44 20 7946 0000``, ``+1 (555) 010 0101``) is left as it is: it holds no letter and no operator after
its sign, so a spreadsheet can neither run a function nor compute anything from it, and the apostrophe
would spoil the value for whoever copies it on. ``+1-555-0101`` or ``-1/2`` are neutralised: Excel would
compute them.
Files meant for machines (notifications.csv) are not neutralised at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_TRIGGER_CHARS = frozenset(FORMULA_TRIGGERS)
# A trigger at the start of the joined row or right after the separator: some cell may need care.
# NUL as the separator: a cell holding one merely takes the careful path, never skips it.
_ROW_MAY_NEED_CARE = re.compile(r"(?:^|\x00)[=+\-@\t\r\n]")
_FIRST_CHARACTER = itemgetter(slice(0, 1))


# A signed decimal number, or a plus, then ASCII digits, spaces and parentheses ending in a digit.
_PLAIN_NUMBER = re.compile(r"[+-][0-9]+(?:\.[0-9]+)?|\+[0-9(][0-9 ()]*[0-9]")


def neutralise(value: str) -> str:
    """Prefix a cell that starts like a formula with an apostrophe, which Excel shows as text; a plain
    phone number or signed number stays as it is."""
    if value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralised_row(cells: Iterable[object]) -> list[object]:
    """The row with every text cell neutralised; other cells (numbers, None) as they are.

    One regular-expression scan per row decides whether any cell needs looking at: most rows need none,
    and a result file has a row per input row.
    """
    row = list(cells)
    if not _ROW_MAY_NEED_CARE.search("\x00".join(map(str, row))):
        return row
    # Only a cell that starts like a formula goes through ``neutralise`` (a row may have one of twenty).
    return [
        neutralise(cell) if isinstance(cell, str) and cell[:1] in _TRIGGER_CHARS else cell for cell in row
    ]


def neutralised_rows(rows: Sequence[Sequence[object]]) -> Sequence[Sequence[object]]:
    """Every row as ``neutralised_row`` would give it, with the rows' cells scanned a column at a time.

    A column's first characters are taken with C calls only and tested against the triggers at once,
    instead of a joined row and a regular expression per row (a quarter of the time): a result file's
    columns rarely hold a formula, and the one that does (a phone number in every fourth row, say) is
    the only one whose cells are then looked at. Rows of unequal width are taken row by row. A row with
    nothing to change is returned as the very object it came as; a changed one is a new list.
    """
    if len(set(map(len, rows))) > 1:
        return [neutralised_row(row) for row in rows]
    columns = list(zip(*rows, strict=True))
    changed = _neutralised_cells(columns)
    if not changed:
        return rows
    safe = list(rows)
    for number, cells in changed.items():
        row = safe[number] = list(rows[number])
        for index, cell in cells:
            row[index] = cell
    return safe


def _neutralised_cells(columns: list[tuple[object, ...]]) -> dict[int, list[tuple[int, str]]]:
    """Per row number, the (column index, neutralised cell) of each of its cells that changes."""
    changed: dict[int, list[tuple[int, str]]] = {}
    for index, column in enumerate(columns):
        starts = _starts(column)
        if _TRIGGER_CHARS.isdisjoint(starts):
            continue
        for number, start in enumerate(starts):
            if start in _TRIGGER_CHARS and (shown := neutralise(cell := str(column[number]))) != cell:
                changed.setdefault(number, []).append((index, shown))
    return changed


def _starts(column: tuple[Any, ...]) -> list[str]:
    """Each text cell's first character ("" for an empty cell, and for a cell that is not text)."""
    try:
        return list(map(_FIRST_CHARACTER, column))  # C calls only: the usual column is all text
    except TypeError:  # a number or None among the cells (the line number's column)
        return [cell[:1] if isinstance(cell, str) else "" for cell in column]

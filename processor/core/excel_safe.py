"""Excel-safe cells (OWASP CSV injection): a text cell that Excel would run as a formula is neutralised.

Only what wardbulk writes is changed; the database keeps the raw value. A cell that is plainly a phone
number or a signed number (``+44 20 7946 0000``, ``-12.5``, ``+1 (555) 010-0101``: a sign, then only
digits, spaces, dots, slashes, parentheses and hyphens) is left as it is: without a letter or another
operator no function can run, and the apostrophe would spoil the value for whoever copies it on.
Files meant for machines (notifications.csv) are not neutralised at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
# A trigger at the start of the joined row or right after the separator: some cell may need care.
# NUL as the separator: a cell holding one merely takes the careful path, never skips it.
_ROW_MAY_NEED_CARE = re.compile(r"(?:^|\x00)[=+\-@\t\r\n]")


# A sign, then a digit, then only what phone numbers and numbers are written with.
_PLAIN_NUMBER = re.compile(r"[+-][ (]*\d[\d ().\-/]*")


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
    return [neutralise(cell) if isinstance(cell, str) else cell for cell in row]

"""Excel-safe cells (OWASP CSV injection): a text cell that Excel would run as a formula is neutralised.

Only what wardbulk writes is changed; the database keeps the raw value.
"""

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: str) -> str:
    """Prefix a cell that starts like a formula with an apostrophe, which Excel shows as text."""
    if value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value

"""Whether a database is already at the schema this version ships, without loading Alembic.

Every ``wardbulk process``, ``report`` and ``run`` makes sure the schema is current first. Alembic and
the migration scripts take a tenth of a second to load, for what is, nearly always, nothing to do; this
check reads the revision the database is at and the head the shipped scripts declare. When it cannot
tell (no version table, an unexpected script, a branch), the caller migrates as before, with Alembic.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

VERSIONS_FOLDER = Path(__file__).with_name("migration_scripts") / "versions"
# The two module-level assignments of an Alembic revision script, with or without a type annotation.
_ASSIGNMENT = r"^{name}(?:\s*:[^=\n]+)?\s*=\s*(?P<value>None|\"[\w-]+\"|'[\w-]+')\s*$"
_REVISION = re.compile(_ASSIGNMENT.format(name="revision"), re.M)
_DOWN_REVISION = re.compile(_ASSIGNMENT.format(name="down_revision"), re.M)


def _declared(pattern: re.Pattern[str], source: str) -> str | None:
    """The string a script assigns; raises ``ValueError`` when it is not one plain assignment."""
    found = pattern.findall(source)
    if len(found) != 1:
        raise ValueError("not a plain revision script")
    value = str(found[0])
    return None if value == "None" else value[1:-1]


@cache
def shipped_head(folder: Path = VERSIONS_FOLDER) -> str | None:
    """The head revision of the scripts in ``folder``; None when it cannot be told without Alembic."""
    revisions: dict[str, str | None] = {}
    try:
        for script in sorted(folder.glob("*.py")):
            source = script.read_text(encoding="utf-8")
            revision = _declared(_REVISION, source)
            if revision is None:
                return None
            revisions[revision] = _declared(_DOWN_REVISION, source)
    except (OSError, ValueError):
        return None
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def database_revision(engine: Engine) -> str | None:
    """The one revision recorded in the database's ``alembic_version`` table; None if there is none."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # no such table yet (an empty database), among others: let Alembic decide
        return None
    return str(rows[0]) if len(rows) == 1 else None


def is_current(engine: Engine) -> bool:
    """True only when the database is certainly at the shipped head revision."""
    head = shipped_head()
    return head is not None and database_revision(engine) == head

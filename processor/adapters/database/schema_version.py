"""Whether a database was initialised, and whether it is at the schema this version ships, without
loading Alembic.

Every ``wardbulk process``, ``report``, ``run`` and ``ops`` reads the revision first. Alembic and the
migration scripts take a tenth of a second to load, for what is, nearly always, nothing to do; this
module reads the revision the database is at and the head the shipped scripts declare. A database with
no ``alembic_version`` table (or, for SQLite, no file) was never initialised: only ``wardbulk init``
creates one. When the head cannot be told (an unexpected script, a branch), the caller migrates with
Alembic as before.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from processor.adapters.database.engine import connect_to, database_label, failure_reason, sqlite_file
from processor.errors import DatabaseUnavailable

VERSION_TABLE = "alembic_version"
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


def recorded_revisions(engine: Engine) -> tuple[str, ...] | None:
    """The revisions in the database's ``alembic_version`` table (one; none after a downgrade to base),
    or None when the database was never initialised: no such table, or no SQLite file at all (which is
    then not created). Raises ``DatabaseUnavailable`` when the database cannot be reached or read.
    """
    file = sqlite_file(engine.url)
    if file is not None and not file.exists():
        return None
    with connect_to(engine) as connection:
        try:
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except DBAPIError as exc:  # e.g. a SQLite file that is not a database, or a lost connection
            reason = failure_reason(exc, engine.url)
            raise DatabaseUnavailable.unreachable(database_label(engine), reason) from exc
    return tuple(str(row) for row in rows)


def is_head(revisions: tuple[str, ...] | None) -> bool:
    """True only when ``revisions`` is certainly the shipped head revision alone."""
    head = shipped_head()
    return head is not None and revisions == (head,)


def is_current(engine: Engine) -> bool:
    """True only when the database is certainly at the shipped head revision. Raises
    ``DatabaseUnavailable`` when it cannot be reached.
    """
    return is_head(recorded_revisions(engine))

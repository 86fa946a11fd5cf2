"""Engine construction: one place that knows SQLite's and PostgreSQL's connection rules.

- ``hide_parameters=True`` everywhere: SQL errors never carry row values into messages or logs.
- ``postgresql://`` URLs use psycopg 3 (the only PostgreSQL driver wardbulk installs).
- Only ``wardbulk init`` creates a database. Every other engine opens a SQLite file with SQLite's
  ``mode=rw``: a missing file is an error, never a new empty database (nor a new folder). A URL that
  already asks for a URI filename (``uri=true``) is opened as written.
- SQLite gets foreign keys on, WAL (readers never block the writer), ``synchronous=FULL``, a busy timeout,
  and real transactions. FULL because under WAL, NORMAL can lose the last commits on power loss, and
  wardbulk publishes a file's summary and archives the file right after its commit: a lost commit would
  contradict a published summary. FULL costs one more fsync per commit, and wardbulk commits once per file.
  pysqlite's own transaction handling would run DDL outside any transaction and take the write lock only
  at the first write, so wardbulk emits ``BEGIN`` itself, and ``BEGIN IMMEDIATE`` for connections with
  the ``sqlite_begin_immediate`` execution option (writers that must not deadlock on a lock upgrade).
  A file's writer (the ``sqlite_wide_cache`` option too, set by ``UnitOfWork``) gets a page cache of
  ``WRITER_CACHE_KIB`` until its connection goes back to the pool:
  a big file's inserts land at scattered places in the unique indexes (e-mails, identifiers), and with
  SQLite's default 2 MB each of them rereads pages the cache just dropped (measured: a 1M-row import
  writes a third faster). Readers and idle pooled connections keep the default, so a long-running
  daemon's memory does not grow with its pool.
- PostgreSQL keeps the server's settings; ``settings_that_lose_commits`` tells when the server could
  lose a commit in a crash (``fsync`` or ``synchronous_commit`` off), so the daemon can warn.
- ``connect_to`` is where a failure to connect becomes ``DatabaseUnavailable``, naming the database by
  ``database_label`` (its URL, password masked).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError

from processor.errors import DatabaseUnavailable
from processor.logs import scrub

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10
BEGIN_IMMEDIATE = "sqlite_begin_immediate"
WRITER_CACHE_KIB = 64 * 1024
WIDE_CACHE = "sqlite_wide_cache"  # execution option: this writer's transaction may be a big file's
_DEFAULT_CACHE = "wardbulk_default_cache_size"  # a connection's own cache_size while it is widened
# The PostgreSQL settings whose value "off" lets a crash lose commits already reported to the client.
_DURABILITY_QUERY = "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')"


def normalised_url(url: str | URL) -> URL:
    """The URL with the driver wardbulk ships: ``postgresql`` → ``postgresql+psycopg``, where needed.

    SQLAlchemy 2.1 already picks psycopg 3 for ``postgresql://``; 2.0 picks psycopg2. The URL is changed
    only when it must be, so that messages name the database by the URL as it was configured.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql" and parsed.get_dialect().driver != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def build_engine(
    url: str | URL, sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, *, create: bool = True
) -> Engine:
    """An engine for ``url``; no connection is made and nothing is created until the first use.

    With ``create`` (``wardbulk init``, tests), the first connection to a missing SQLite file creates it
    and its folder; without, a missing file fails that connection. PostgreSQL databases are never
    created. ``sqlite_busy_timeout_ms`` is how long a SQLite connection waits for a lock before failing
    with "database is locked" (which the pipeline then retries with backoff).
    """
    parsed = normalised_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_busy_timeout_ms, create)
    # A server that drops packets instead of refusing would otherwise hold a command for the TCP timeout.
    connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    return create_engine(parsed, hide_parameters=True, pool_pre_ping=True, connect_args=connect_args)


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names; None for other databases, in-memory ones and URI filenames."""
    if url.get_backend_name() != "sqlite" or url.query.get("uri") in ("true", "1"):
        return None
    if not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def database_label(engine: Engine) -> str:
    """How messages name the engine's database: its URL with the password masked."""
    return engine.url.render_as_string(hide_password=True)


def failure_reason(exc: DBAPIError, url: URL | None) -> str:
    """Why a database operation failed, in one line: the first line of the driver's message (PostgreSQL's
    DETAIL lines can hold row values), scrubbed like a log line, and never the password.
    """
    lines = [line.strip() for line in str(exc.orig or exc).splitlines() if line.strip()]
    reason = scrub(lines[0]) if lines else type(exc.orig or exc).__name__
    return reason.replace(url.password, "***") if url is not None and url.password else reason


def connect_to(engine: Engine) -> Connection:
    """A connection from ``engine``. Raises ``DatabaseUnavailable`` when none can be opened."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        reason = failure_reason(exc, engine.url)
        raise DatabaseUnavailable.unreachable(database_label(engine), reason) from exc


def settings_that_lose_commits(engine: Engine) -> dict[str, str]:
    """PostgreSQL's ``fsync`` and ``synchronous_commit`` when ``off`` (a crash may then lose commits),
    with their values. Always empty for SQLite, whose durability ``build_engine`` sets itself.
    """
    if engine.dialect.name != "postgresql":
        return {}
    with connect_to(engine) as connection:
        rows = connection.execute(text(_DURABILITY_QUERY)).all()
    return {str(name): str(value) for name, value in rows if value == "off"}


def _sqlite_engine(url: URL, busy_timeout_ms: int, create: bool) -> Engine:
    engine = create_engine(url, hide_parameters=True)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that BEGIN is ours (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA foreign_keys = ON",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            f"PRAGMA busy_timeout = {busy_timeout_ms}",
        ):
            cursor.execute(pragma)
        cursor.close()

    event.listen(engine, "do_connect", _create_folder if create else _open_existing_file)
    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    event.listen(engine, "checkin", _sqlite_on_checkin)
    return engine


def _is_plain_file(cargs: list[Any], cparams: dict[str, Any]) -> bool:
    return not cparams.get("uri") and bool(cargs) and cargs[0] != ":memory:"


def _create_folder(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
    """``do_connect`` of an engine that may create the file: make its folder (sqlite3 makes the file)."""
    if _is_plain_file(cargs, cparams):
        Path(cargs[0]).parent.mkdir(parents=True, exist_ok=True)


def _open_existing_file(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
    """``do_connect`` of an engine that must not create the file: open it read-write as a URI with
    ``mode=rw``, which fails ("unable to open database file") instead of creating it.
    """
    if not _is_plain_file(cargs, cparams):
        return None  # SQLAlchemy connects as usual
    return dialect.connect(f"file:{quote(str(cargs[0]))}?mode=rw", *cargs[1:], **{**cparams, "uri": True})


def _sqlite_on_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(BEGIN_IMMEDIATE, False)
    if immediate and connection.get_execution_options().get(WIDE_CACHE, False):
        _widen_cache(connection)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _widen_cache(connection: Connection) -> None:
    """A writer's page cache of ``WRITER_CACHE_KIB``; its own size is kept to restore at check-in."""
    info = connection.connection.info
    if _DEFAULT_CACHE not in info:
        info[_DEFAULT_CACHE] = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        connection.exec_driver_sql(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")


def _sqlite_on_checkin(dbapi_connection: Any, record: Any) -> None:
    """A connection back in the pool returns to its own cache size (SQLite frees the pages above it).

    Should that fail (a disk fault, say), the connection is invalidated rather than kept wide or lost to
    the pool: an exception here would keep it checked out for good and replace the caller's own error.
    """
    if dbapi_connection is None or _DEFAULT_CACHE not in record.info:
        return
    size = int(record.info.pop(_DEFAULT_CACHE))
    try:
        dbapi_connection.execute(f"PRAGMA cache_size = {size}")
    except Exception as exc:  # whatever it is: the connection is dropped, never reused wide
        record.invalidate(exc)

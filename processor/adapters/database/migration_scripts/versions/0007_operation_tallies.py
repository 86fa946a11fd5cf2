"""Operation tallies: the history's statistics kept up to date by the database itself (issue 13).

At 5 million operations, counting them from an index took over a second, and each median or p95 walked
half or a twentieth of a duration index. Two small tables now hold the counts, kept by triggers on
``bulk_operations`` in the same transaction as each change of a row, whoever makes it (the pipeline,
recovery, a report, a person with a SQL prompt):

- ``operation_tallies``: per type, status and UTC creation day, how many operations, their record and
  successful record sums, and how many are finished (have a start and a completion time). A year of a
  feed is a few thousand rows; any statistics filter (type, status, days) is a sum over some of them.
- ``operation_duration_tallies``: per type and status, how many finished operations have a duration in
  each bucket. Buckets are 1 ms wide below 1 s, 10 ms below 10 s, and so on, ten times wider at each
  power of ten up to 100 s wide from 10^4 s on; negative durations (a clock set back) share bucket -1.
  A median is then found in its bucket from the tally, and read exactly by walking the duration index
  within that bucket only (``history.py``).

The buckets are computed from exact integer microseconds, as the duration indexes of 0005 are. The
triggers add a row's contribution for its new values and subtract it for its old ones; on PostgreSQL the
two keys are changed in a fixed order (the smaller status first), so that two hosts changing operations
of the same type and day cannot deadlock on the tallies. The backfill counts what is already there.

The index ``ix_bulk_operations_type_status_totals`` of 0005 served only the counts: it goes.

SQLite drops a table's triggers with it: a later batch rebuild of ``bulk_operations`` (as 0004 does) must
create them again afterwards (``create_triggers`` below), as it must the duration indexes of 0005.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TALLIED = (
    "operation_type",
    "status",
    "created_at",
    "started_at",
    "completed_at",
    "total_records",
    "successful_records",
)
TRIGGERS = ("operation_tallies_insert", "operation_tallies_update", "operation_tallies_delete")
TOTALS_INDEX = (
    "ix_bulk_operations_type_status_totals",
    ["operation_type", "status", "total_records", "successful_records", "created_at"],
)
# (below, width) in microseconds: durations below ``below`` fall in buckets ``width`` wide; the last
# width holds for all longer ones. Frozen here; history.py keeps the same ladder (a test compares them).
BUCKET_LADDER = ((10**6, 10**3), (10**7, 10**4), (10**8, 10**5), (10**9, 10**6), (10**10, 10**7))
LONGEST_WIDTH = 10**8


def _bucket(microseconds: str) -> str:
    """SQL: the bucket (its lower bound in microseconds) of an integer duration ``microseconds``."""
    steps = " ".join(
        f"WHEN {microseconds} < {below} THEN {microseconds} / {width} * {width}"
        for below, width in BUCKET_LADDER
    )
    return f"CASE WHEN {microseconds} < 0 THEN -1 {steps} ELSE {microseconds} / {LONGEST_WIDTH} * {LONGEST_WIDTH} END"


def _sqlite_microseconds(row: str) -> str:
    """The exact microseconds from ``row``'s start to its completion (0005's duration, not yet divided)."""

    def whole_seconds(column: str) -> str:
        return f"CAST(strftime('%s', substr({row}.{column}, 1, 19)) AS INTEGER)"

    def fraction(column: str) -> str:
        return f"CAST(substr(substr({row}.{column}, 21) || '000000', 1, 6) AS INTEGER)"

    seconds = f"{whole_seconds('completed_at')} - {whole_seconds('started_at')}"
    return f"(({seconds}) * 1000000 + {fraction('completed_at')} - {fraction('started_at')})"


def _sqlite_tally(row: str, sign: int) -> str:
    """SQLite statements adding ``sign`` times ``row``'s (NEW or OLD) contribution to both tallies."""
    finished = f"({row}.started_at IS NOT NULL AND {row}.completed_at IS NOT NULL)"
    return f"""
    INSERT INTO operation_tallies
        (operation_type, status, created_on, operations, total_records, successful_records, finished)
    VALUES ({row}.operation_type, {row}.status, date({row}.created_at), {sign},
            {sign} * {row}.total_records, {sign} * {row}.successful_records, {sign} * {finished})
    ON CONFLICT (operation_type, status, created_on) DO UPDATE SET
        operations = operations + excluded.operations,
        total_records = total_records + excluded.total_records,
        successful_records = successful_records + excluded.successful_records,
        finished = finished + excluded.finished;
    INSERT INTO operation_duration_tallies (operation_type, status, bucket_us, operations)
    SELECT {row}.operation_type, {row}.status, {_bucket("u")}, {sign}
    FROM (SELECT {_sqlite_microseconds(row)} AS u)
    WHERE {finished}
    ON CONFLICT (operation_type, status, bucket_us) DO UPDATE SET
        operations = operations + excluded.operations;"""


def _sqlite_triggers() -> list[str]:
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in TALLIED)
    return [
        f"CREATE TRIGGER operation_tallies_insert AFTER INSERT ON bulk_operations BEGIN"
        f"{_sqlite_tally('NEW', 1)}\nEND",
        f"CREATE TRIGGER operation_tallies_update AFTER UPDATE OF {', '.join(TALLIED)} ON bulk_operations"
        f" WHEN {changed} BEGIN{_sqlite_tally('OLD', -1)}{_sqlite_tally('NEW', 1)}\nEND",
        f"CREATE TRIGGER operation_tallies_delete AFTER DELETE ON bulk_operations BEGIN"
        f"{_sqlite_tally('OLD', -1)}\nEND",
    ]


POSTGRESQL_ADD = f"""
CREATE FUNCTION operation_tallies_add(
    kind text, state text, created timestamptz, started timestamptz, completed timestamptz,
    records integer, successful integer, sign integer
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    finished boolean := started IS NOT NULL AND completed IS NOT NULL;
    us bigint;
BEGIN
    INSERT INTO operation_tallies AS t
        (operation_type, status, created_on, operations, total_records, successful_records, finished)
    VALUES (kind, state, (created AT TIME ZONE 'UTC')::date, sign, sign * records, sign * successful,
            CASE WHEN finished THEN sign ELSE 0 END)
    ON CONFLICT (operation_type, status, created_on) DO UPDATE SET
        operations = t.operations + excluded.operations,
        total_records = t.total_records + excluded.total_records,
        successful_records = t.successful_records + excluded.successful_records,
        finished = t.finished + excluded.finished;
    IF finished THEN
        us := (EXTRACT(epoch FROM completed - started) * 1000000)::bigint;
        INSERT INTO operation_duration_tallies AS d (operation_type, status, bucket_us, operations)
        VALUES (kind, state, {_bucket("us")}, sign)
        ON CONFLICT (operation_type, status, bucket_us) DO UPDATE SET
            operations = d.operations + excluded.operations;
    END IF;
END $$
"""

POSTGRESQL_FOLLOW = """
CREATE FUNCTION operation_tallies_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.operation_type, OLD.status, OLD.created_at, OLD.started_at,
            OLD.completed_at, OLD.total_records, OLD.successful_records)
        IS NOT DISTINCT FROM (NEW.operation_type, NEW.status, NEW.created_at, NEW.started_at,
            NEW.completed_at, NEW.total_records, NEW.successful_records) THEN
        RETURN NULL;
    END IF;
    -- The smaller key first, whichever is old: two hosts then lock the tally rows in the same order.
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
            AND (NEW.operation_type, NEW.status) < (OLD.operation_type, OLD.status)) THEN
        PERFORM operation_tallies_add(NEW.operation_type, NEW.status, NEW.created_at, NEW.started_at,
            NEW.completed_at, NEW.total_records, NEW.successful_records, 1);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM operation_tallies_add(OLD.operation_type, OLD.status, OLD.created_at, OLD.started_at,
            OLD.completed_at, OLD.total_records, OLD.successful_records, -1);
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.operation_type, NEW.status) >= (OLD.operation_type, OLD.status) THEN
        PERFORM operation_tallies_add(NEW.operation_type, NEW.status, NEW.created_at, NEW.started_at,
            NEW.completed_at, NEW.total_records, NEW.successful_records, 1);
    END IF;
    RETURN NULL;
END $$
"""


def _postgresql_triggers() -> list[str]:
    return [
        POSTGRESQL_ADD,
        POSTGRESQL_FOLLOW,
        "CREATE TRIGGER operation_tallies_insert AFTER INSERT ON bulk_operations"
        " FOR EACH ROW EXECUTE FUNCTION operation_tallies_follow()",
        f"CREATE TRIGGER operation_tallies_update AFTER UPDATE OF {', '.join(TALLIED)} ON bulk_operations"
        " FOR EACH ROW EXECUTE FUNCTION operation_tallies_follow()",
        "CREATE TRIGGER operation_tallies_delete AFTER DELETE ON bulk_operations"
        " FOR EACH ROW EXECUTE FUNCTION operation_tallies_follow()",
    ]


def create_triggers() -> None:
    """The triggers that keep both tallies equal to ``bulk_operations`` (for this dialect)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _sqlite_triggers() if sqlite else _postgresql_triggers():
        op.execute(statement)


def _backfill() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    day = "date(created_at)" if sqlite else "(created_at AT TIME ZONE 'UTC')::date"
    microseconds = (
        _sqlite_microseconds("bulk_operations")
        if sqlite
        else "(EXTRACT(epoch FROM completed_at - started_at) * 1000000)::bigint"
    )
    finished = "CASE WHEN started_at IS NOT NULL AND completed_at IS NOT NULL THEN 1 ELSE 0 END"
    op.execute(
        "INSERT INTO operation_tallies"
        " (operation_type, status, created_on, operations, total_records, successful_records, finished)"
        f" SELECT operation_type, status, {day}, count(*), sum(total_records), sum(successful_records),"
        f" sum({finished}) FROM bulk_operations GROUP BY operation_type, status, {day}"
    )
    op.execute(
        "INSERT INTO operation_duration_tallies (operation_type, status, bucket_us, operations)"
        f" SELECT operation_type, status, bucket_us, count(*) FROM (SELECT operation_type, status,"
        f" {_bucket(microseconds)} AS bucket_us FROM bulk_operations"
        " WHERE started_at IS NOT NULL AND completed_at IS NOT NULL) AS finished"
        " GROUP BY operation_type, status, bucket_us"
    )


def upgrade() -> None:
    op.create_table(
        "operation_tallies",
        sa.Column("operation_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("operations", sa.BigInteger(), nullable=False),
        sa.Column("total_records", sa.BigInteger(), nullable=False),
        sa.Column("successful_records", sa.BigInteger(), nullable=False),
        sa.Column("finished", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("operation_type", "status", "created_on", name="pk_operation_tallies"),
    )
    op.create_table(
        "operation_duration_tallies",
        sa.Column("operation_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bucket_us", sa.BigInteger(), nullable=False),
        sa.Column("operations", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "operation_type", "status", "bucket_us", name="pk_operation_duration_tallies"
        ),
    )
    _backfill()
    create_triggers()
    op.drop_index(TOTALS_INDEX[0], table_name="bulk_operations")


def downgrade() -> None:
    op.create_index(TOTALS_INDEX[0], "bulk_operations", TOTALS_INDEX[1], unique=False)
    postgresql = op.get_bind().dialect.name == "postgresql"
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger}" + (" ON bulk_operations" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION operation_tallies_follow()")
        op.execute(
            "DROP FUNCTION operation_tallies_add(text, text, timestamptz, timestamptz, timestamptz,"
            " integer, integer, integer)"
        )
    op.drop_table("operation_duration_tallies")
    op.drop_table("operation_tallies")

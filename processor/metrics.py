"""Prometheus metrics (issue 15), read from the database at each scrape, so that every daemon (and the
``wardbulk metrics`` command) reports the same figures, and counters never go back at a restart:

- ``wardbulk_files_total{operation,status}``: finished files (completed, failed, validated);
- ``wardbulk_records_total{operation,outcome}``: the rows of completed and failed files (not dry runs);
- ``wardbulk_file_duration_seconds{operation,status}``: a histogram of their durations;
- ``wardbulk_files_in_progress{operation}``, ``wardbulk_last_success_timestamp_seconds{operation}``;
- ``wardbulk_inbox_files``, ``wardbulk_inbox_oldest_file_age_seconds``, ``wardbulk_inbox_readable``:
  the backlog, and whether the inbox could be read at all;
- ``wardbulk_daemons_running``, ``wardbulk_database_up``.

The counts come from the history's tallies (``tallies.py``: a row per type, status and day). A failed
file counts all its rows as failed (nothing of it was applied), and a dry run that failed is counted
with the failed files (the tallies do not tell dry runs apart). Each histogram ``le`` bound is an edge
of the tallies' half-open buckets, so the counts are exact but for a duration exactly on a bound, which
counts in the next; ``_sum`` is counted from the buckets' midpoints, within half a bucket of each
duration (0.5 ms below a second, at most 0.5 % above). Every daemon serves the same database-wide
figures: aggregate them with ``max``, not ``sum``. No metric carries a file name or a cell value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from processor.adapters.database.daemons import daemon_states
from processor.adapters.database.models import BulkOperation, PatientNotification
from processor.adapters.database.tallies import OperationDurationTally, OperationTally, bucket_bounds
from processor.core.operation_kinds import OPERATION_NAMES
from processor.core.operation_types import OperationStatus
from processor.health import is_running, waiting_files
from processor.logs import get_logger
from processor.settings import Settings

log = get_logger(__name__)
FINAL = (OperationStatus.COMPLETED.value, OperationStatus.FAILED.value, OperationStatus.VALIDATED.value)
APPLIED = (OperationStatus.COMPLETED.value, OperationStatus.FAILED.value)
BOUNDS_S = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0)  # bucket edges all


class WardbulkCollector:
    """A prometheus_client collector: each ``collect`` reads the figures afresh."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine, self._settings = engine, settings

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

        yield from self._backlog()
        try:
            with self._engine.connect() as connection:
                families = list(_database_families(connection))
        except Exception as exc:  # the database down: say so, and still give the backlog
            log.warning("metrics_database_unreadable", error=type(exc).__name__)
            yield GaugeMetricFamily("wardbulk_database_up", "Whether the database could be read.", value=0)
            return
        yield GaugeMetricFamily("wardbulk_database_up", "Whether the database could be read.", value=1)
        yield from families

    def _backlog(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

        readable = self._settings.inbox_dir.is_dir()
        try:
            waiting = list(waiting_files(self._settings)) if readable else []
        except OSError:
            readable, waiting = False, []
        yield GaugeMetricFamily(
            "wardbulk_inbox_readable",
            "Whether the inbox could be read (0: not mounted?).",
            value=int(readable),
        )
        now = datetime.now(UTC).timestamp()
        yield GaugeMetricFamily("wardbulk_inbox_files", "Files waiting in the inbox.", value=len(waiting))
        oldest = now - waiting[0][1] if waiting else 0.0
        yield GaugeMetricFamily(
            "wardbulk_inbox_oldest_file_age_seconds",
            "How long the oldest waiting file has waited.",
            value=oldest,
        )


def _database_families(connection: Connection) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

    files = CounterMetricFamily("wardbulk_files", "Finished files.", labels=["operation", "status"])
    records = CounterMetricFamily(
        "wardbulk_records", "Rows of finished files.", labels=["operation", "outcome"]
    )
    running = GaugeMetricFamily("wardbulk_files_in_progress", "Files being processed.", labels=["operation"])
    in_progress: dict[str, float] = defaultdict(float)
    query = select(
        OperationTally.operation_type,
        OperationTally.status,
        func.sum(OperationTally.operations),
        func.sum(OperationTally.total_records),
        func.sum(OperationTally.successful_records),
    ).group_by(OperationTally.operation_type, OperationTally.status)
    successful: dict[str, float] = defaultdict(float)
    failed: dict[str, float] = defaultdict(float)
    for operation, status, *sums in connection.execute(query):
        operations, total, ok = (float(figure) for figure in sums)  # PostgreSQL sums are numeric
        if status in FINAL:
            files.add_metric([operation, status], operations)
        if status in APPLIED:  # a dry run's rows were never applied: not counted as rows
            successful[operation] += ok
            failed[operation] += total - ok
        if status not in FINAL:
            in_progress[operation] += operations
    for operation in OPERATION_NAMES:
        records.add_metric([operation, "successful"], successful[operation])
        records.add_metric([operation, "failed"], failed[operation])
        running.add_metric([operation], in_progress[operation])
    yield from (files, records, running, _durations(connection), _last_successes(connection))
    yield from _unsent_emails(connection)
    now = datetime.now(UTC)
    alive = sum(1 for state in daemon_states(connection) if is_running(state, now))
    yield GaugeMetricFamily("wardbulk_daemons_running", "Daemons running (see wardbulk health).", value=alive)


def _durations(connection: Connection) -> Any:
    from prometheus_client.core import HistogramMetricFamily  # noqa: PLC0415

    histogram = HistogramMetricFamily(
        "wardbulk_file_duration_seconds", "Durations of finished files.", labels=["operation", "status"]
    )
    buckets: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    query = select(
        OperationDurationTally.operation_type,
        OperationDurationTally.status,
        OperationDurationTally.bucket_us,
        OperationDurationTally.operations,
    ).where(OperationDurationTally.status.in_(FINAL))
    for operation, status, bucket, operations in connection.execute(query):
        buckets[operation, status].append((int(bucket), int(operations)))
    for (operation, status), found in sorted(buckets.items()):
        cumulative, total_s = _cumulative(found)
        histogram.add_metric([operation, status], cumulative, sum_value=total_s)
    return histogram


def _cumulative(found: list[tuple[int, int]]) -> tuple[list[tuple[str, float]], float]:
    """``le`` buckets (each bound an edge of the tallies' buckets, so every count is exact) and the sum
    of the durations from the buckets' midpoints."""
    spans = [(bucket_bounds(bucket), operations) for bucket, operations in found]
    counts = [
        (f"{bound:g}", float(sum(n for (_, upper), n in spans if upper <= bound * 1_000_000)))
        for bound in BOUNDS_S
    ]
    counts.append(("+Inf", float(sum(n for _, n in spans))))
    midpoints = sum(n * ((lower or 0) + upper) / 2 for (lower, upper), n in spans) / 1_000_000
    return counts, max(midpoints, 0.0)


def _last_successes(connection: Connection) -> Any:
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

    last = GaugeMetricFamily(
        "wardbulk_last_success_timestamp_seconds",
        "When a file last completed (Unix time).",
        labels=["operation"],
    )
    for operation in OPERATION_NAMES:
        query = (
            select(BulkOperation.completed_at)
            .where(
                BulkOperation.operation_type == operation,
                BulkOperation.status == OperationStatus.COMPLETED.value,
            )
            .order_by(BulkOperation.id.desc())
            .limit(1)
        )
        completed = connection.execute(query).scalar()
        if completed is not None:
            last.add_metric([operation], completed.timestamp())
    return last


def _unsent_emails(connection: Connection) -> Iterator[Any]:
    """Caregiver e-mails not sent yet, and the oldest one's time: a courier that cannot deliver shows
    here before the notifications expire. (Sent and failed ones are in patient_notifications; counting
    them at every scrape would read a table that only grows.)"""
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

    unsent = PatientNotification.status.in_(("email_pending", "email_sending"))
    count, oldest = connection.execute(
        select(func.count(), func.min(PatientNotification.created_at)).where(unsent)
    ).one()
    yield GaugeMetricFamily(
        "wardbulk_notification_emails_unsent", "Caregiver e-mails pending or being sent.", value=count
    )
    if oldest is not None:
        yield GaugeMetricFamily(
            "wardbulk_notification_email_oldest_unsent_timestamp_seconds",
            "When the oldest unsent caregiver e-mail was written (Unix time).",
            value=oldest.timestamp(),
        )


def exposition(engine: Engine, settings: Settings) -> bytes:
    """The metrics in Prometheus's text format, read now."""
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(WardbulkCollector(engine, settings))
    return bytes(generate_latest(registry))


def serve(engine: Engine, settings: Settings, address: str) -> Any:
    """Serve the metrics at ``http://<address>/metrics`` (``host:port``) on a thread; the server, to
    ``shutdown()``."""
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(WardbulkCollector(engine, settings))
    host, port = address.rsplit(":", 1)
    server, _thread = start_http_server(int(port), addr=host, registry=registry)
    return server

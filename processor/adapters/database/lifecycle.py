"""A BulkOperation's life, one method per state change: how the pipeline (through each ``FileJob``),
the report service and recovery change an operation's row.

pending (``register``) → processing (``start``, with its bytes claimed; ``progress`` as rows are read)
→ completed (``complete``, inside the file's transaction) | failed (``fail``) | validated (a dry run's
end, ``validated``: nothing applied, no bytes claimed); a graceful stop puts it
back to pending (``interrupt``). Every change is made only while this process still owns the operation
(``operation_records``: a compare-and-set on the owner), so work taken over is never finished twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from processor.adapters.database import operation_records as records
from processor.core.clock import Clock
from processor.core.operation_types import OperationStatus
from processor.core.problems import Code


@dataclass(frozen=True)
class Committed:
    """An operation's fate as the database holds it; what is left is publishing its outbox."""

    status: OperationStatus
    error_code: str | None
    counts: records.Counts


@dataclass(frozen=True)
class Lifecycle:
    """The state changes of operation ``operation_id``, made as ``owner``.

    ``quiet_until``: progress is not written before then (see ``progress``).
    """

    engine: Engine
    clock: Clock
    owner: str
    operation_id: int
    quiet_until: datetime | None = None

    @classmethod
    def register(cls, engine: Engine, clock: Clock, new: records.NewOperation, now: datetime) -> Lifecycle:
        """A new pending operation, created at ``now``."""
        return cls(engine, clock, new.host, records.register(engine, new, now))

    def start(self, claim: records.BytesToClaim | None) -> int | None:
        """Mark it processing from zero, claiming its bytes; the operation already holding them, if any."""
        return records.start_processing(self.engine, self.operation_id, self.owner, self.clock(), claim)

    def mark_processing(self) -> None:
        """Mark it processing (a run that has no bytes to claim: a report)."""
        records.mark_processing(self.engine, self.operation_id, self.owner, self.clock())

    def progress(self, processed: int) -> None:
        """Publish how many rows were read so far, unless it is not yet ``quiet_until``: a file done by
        then is never seen in progress (its completion, in the file's transaction, records its counts),
        and a transaction of its own per chunk was a good part of a small file's time. Ownership is
        still checked where it matters, by the compare-and-set of ``complete`` in that transaction."""
        now = self.clock()
        if self.quiet_until is not None and now < self.quiet_until:
            return
        records.record_progress(self.engine, self.operation_id, self.owner, processed, now)

    def beat(self) -> None:
        """Tell other hosts that the owner is alive."""
        records.beat(self.engine, self.operation_id, self.owner, self.clock())

    def complete(
        self, connection: Connection, counts: records.Counts, messages: list[str], output: str
    ) -> datetime:
        """Mark it completed on ``connection`` (the file's transaction); returns the completion time."""
        completed_at = self.clock()
        records.complete(connection, self.operation_id, self.owner, counts, messages, output, completed_at)
        return completed_at

    def validated(self, counts: records.Counts, messages: list[str], output: str, at: datetime) -> None:
        """Mark a dry run validated at ``at`` (its own short transaction)."""
        records.validated(self.engine, self.operation_id, self.owner, counts, messages, output, at)

    def fail(
        self,
        counts: records.Counts,
        code: Code,
        messages: list[str],
        output: str = "",
        at: datetime | None = None,
    ) -> None:
        """Mark it failed, nothing applied (its own short transaction), at ``at`` (default: now)."""
        failed_at = at or self.clock()
        records.fail(
            self.engine, self.operation_id, self.owner, counts, code.value, messages, output, failed_at
        )

    def interrupt(self) -> None:
        """Put it back to pending after a graceful stop: it is processed again from the start."""
        records.set_pending(self.engine, self.operation_id, self.owner)

    def committed(self) -> Committed | None:
        """Its committed outcome (completed or failed), or None while it has none."""
        row = records.load(self.engine, self.operation_id)
        if row.status not in records.ENDED:
            return None
        counts = records.Counts(row.total_records, row.successful_records, row.failed_records)
        return Committed(OperationStatus(row.status), row.error_code, counts)

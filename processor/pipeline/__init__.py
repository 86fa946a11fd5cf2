"""The file pipeline, written once for every operation type.

claim → register (BulkOperation + file claim) → phase 1: read, validate in chunks, spool the valid
payloads, write result/errors partials, publish progress → decide (policy rejections) → phase 2: apply
the spool in ONE transaction that also marks the operation completed → publish the outbox → archive.

Crash safety: phase 1 writes nothing to the ward tables; phase 2 commits everything or nothing, and the
summary partial is on disk before the commit. After a crash ``recovery`` reprocesses operations that never
committed and finishes the outbox and archive steps of those that did.

The modules, in the order a file meets them:

- ``context``: ``Pipeline`` (settings, engine, clock, owner, the stop) and ``Interrupted``.
- ``lifecycle``: ``Lifecycle``, every state change of a BulkOperation (also for reports and recovery).
- ``file_job``: ``FileJob``, the owner of one file's operation, claimed copy, spool and outbox files.
- ``handler``: the use case, top to bottom (start, validate to spool, policy, apply, commit).
- ``checks``: the decisions that need no rows, and the error-rate policy.
- ``validation`` and ``spool``: phase 1.
- ``faults``: the one table from exceptions to what becomes of the file.
- ``rejection``: failing a file, its outputs saying why.
- ``publishing``: the outbox renamed into place, the input moved on.
- ``runtime``: the heartbeat and the garbage collector's pause while a file runs.
"""

from processor.adapters.database.lifecycle import Committed, Lifecycle
from processor.pipeline.context import Interrupted, Pipeline
from processor.pipeline.faults import is_host_fault
from processor.pipeline.file_job import FileJob, FileOutcome, job_for
from processor.pipeline.handler import decide_claimed, process_claimed, run_operation
from processor.pipeline.publishing import Decided, publish, publish_all
from processor.pipeline.runtime import Heartbeat

__all__ = [
    "Committed",
    "Decided",
    "FileJob",
    "FileOutcome",
    "Heartbeat",
    "Interrupted",
    "Lifecycle",
    "Pipeline",
    "decide_claimed",
    "is_host_fault",
    "job_for",
    "process_claimed",
    "publish",
    "publish_all",
    "run_operation",
]

"""What every step of the pipeline needs: the ``Pipeline`` (settings, engine, clock, owner) and the stop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from processor.adapters.database.unit_of_work import ReportWriting
from processor.adapters.inbox import PROCESSING_FOLDER
from processor.adapters.owners import this_process
from processor.adapters.storage import HostAreas
from processor.core.clock import Clock
from processor.core.operation_kinds import OperationType
from processor.settings import OperationSettings, Settings


class Interrupted(Exception):
    """A graceful stop was asked for; the file's transaction was rolled back and it waits, claimed."""


@dataclass
class Pipeline:
    """Everything the pipeline needs; built by ``bootstrap``."""

    settings: Settings
    engine: Engine
    clock: Clock
    host: str = field(default_factory=this_process)  # the owner name of operations: host:pid:…
    should_stop: Callable[[], bool] = lambda: False
    on_progress: Callable[[int], None] | None = None
    backoff_s: float = 0.5
    # A file's progress is first written this long after it started (``Lifecycle.progress``).
    progress_after_s: float = 0.5
    # Where the reports of export files go (bootstrap: ``reports.store.ReportOutput``); None: no reports.
    reports: ReportWriting | None = None

    @property
    def host_areas(self) -> HostAreas:
        """Where wardbulk writes its own files (a refused permission there is the host's fault)."""
        settings = self.settings  # absolute: faults.py compares them with an OSError's path made absolute
        processing = settings.inbox_dir / PROCESSING_FOLDER
        return HostAreas(
            settings.outbox_dir.absolute(), settings.archive_dir.absolute(), processing.absolute()
        )

    def check_stop(self) -> None:
        """Raise ``Interrupted`` when a stop was asked for (called at every chunk boundary)."""
        if self.should_stop():
            raise Interrupted

    def settings_of(self, operation_type: OperationType) -> OperationSettings:
        """The ``[operations.<type>]`` settings."""
        return self.settings.operations.for_type(operation_type)

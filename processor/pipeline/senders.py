"""A file's sender (``[[senders]]``) as the pipeline uses it: the settings its files are read with, the
shape to translate, and the refusal of a file that no single sender owns.

The sender is recorded when the file is registered (``file_job.register``) and read back from there, so
that recovery reads an interrupted file as it was going to be read.
"""

from __future__ import annotations

from processor.core.problems import Code, FileRejected
from processor.core.senders import SenderShape
from processor.pipeline.context import Pipeline
from processor.pipeline.file_job import FileJob
from processor.sender_settings import SenderSettings
from processor.settings import OperationSettings

OVERRIDES = ("encoding", "on_row_error", "max_error_rate", "mode", "clear_marker", "sheet")


def sender_problem(pipeline: Pipeline, job: FileJob) -> FileRejected | None:
    """Why the file cannot be read as any sender's: its name matches several (never a guess), or its
    recorded sender is no longer configured. None when it can."""
    if job.sender is not None:
        if pipeline.settings.sender_named(job.sender) is None:
            return FileRejected.single(
                Code.UNKNOWN_SENDER,
                f"the file was taken as sender {job.sender!r}'s, which is no longer configured; "
                "nothing was applied: send it again",
            )
        return None
    matching = pipeline.settings.sender_of(job.claimed.operation_type, job.claimed.original_name)
    if len(matching) > 1:
        names = ", ".join(repr(sender.name) for sender in matching)
        return FileRejected.single(
            Code.AMBIGUOUS_SENDER,
            f"the file's name matches the files of several senders ({names}); nothing was applied: "
            "rename it, or make their files patterns tell them apart",
        )
    return None


def sender_of(pipeline: Pipeline, job: FileJob) -> SenderSettings | None:
    """The file's sender's settings, if it has a sender."""
    return pipeline.settings.sender_named(job.sender) if job.sender else None


def settings_for(pipeline: Pipeline, job: FileJob) -> OperationSettings:
    """The operation's settings, with what the file's sender sets instead (``OVERRIDES``)."""
    settings = pipeline.settings_of(job.claimed.operation_type)
    sender = sender_of(pipeline, job)
    if sender is None:
        return settings
    overrides = {key: getattr(sender, key) for key in OVERRIDES if getattr(sender, key) is not None}
    return settings.model_copy(update=overrides)


def shape_for(pipeline: Pipeline, job: FileJob) -> SenderShape | None:
    """How the file's sender shapes its files, if it has a sender."""
    sender = sender_of(pipeline, job)
    return sender.shape() if sender else None

"""Logging: structlog for wardbulk's own events, the same chain for stdlib loggers, and redaction.

Log events carry file names, line numbers, field names and error codes — never cell values. Code keeps
to that by construction; ``redact`` is the safety net in the chain for what code does not control:
database error texts (PostgreSQL's ``DETAIL: Key (email)=(...)``, ``Failing row contains (...)``),
SQL parameters, validation texts (``input_value=...``), e-mail addresses and credentials in URLs.
Tracebacks are rendered as plain text without frame locals, and then redacted like everything else.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

# structlog imports Rich at its own import when Rich is installed (35 ms of every command's start-up:
# rich.traceback, rich.pretty, pygments, attrs), only for pretty exception formatters wardbulk does not
# use: exceptions are rendered as plain text (``format_exc_info``, ``plain_traceback``). So structlog is
# imported with Rich hidden (a None in sys.modules makes ``import rich`` fail as if Rich were absent),
# and Rich is back for the CLI's tables and progress bar, which import it themselves. When something has
# already loaded Rich, or structlog, nothing is hidden: there is nothing left to save.
_HIDE_RICH = "rich" not in sys.modules and "structlog" not in sys.modules
if _HIDE_RICH:
    sys.modules["rich"] = None  # type: ignore[assignment]
try:
    import structlog
finally:
    if _HIDE_RICH:
        del sys.modules["rich"]

REDACTED = "<redacted>"

# Keys whose values are patient data whatever they contain; dropping them is cheaper than trusting code.
SENSITIVE_KEYS = frozenset(
    {
        "value",
        "values",
        "cell",
        "row",
        "record",
        "email",
        "first_name",
        "last_name",
        "name",
        "phone",
        "date_of_birth",
        "caregiver_name",
        "caregiver_email",
        "caregiver_phone",
        "discharge_notes",
        "chief_complaint",
        "reason",
        "password",
        "params",
        "parameters",
    }
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PostgreSQL: "DETAIL:  Key (email)=(jane@x.org) already exists." and "Failing row contains (...)".
    (
        re.compile(r"(Key \([^)]*\)=\().*?(\)(?: already exists| is not present|\s|$))"),
        rf"\1{REDACTED}\2",
    ),
    (re.compile(r"(Failing row contains ).*"), rf"\1{REDACTED}"),
    (re.compile(r"(DETAIL:).*"), rf"\1 {REDACTED}"),
    # SQLAlchemy statement errors and echo: "[parameters: (...)]".
    (re.compile(r"(\[parameters: ).*?(\]\n|\]$)", re.S), rf"\1{REDACTED}\2"),
    # pydantic: "input_value='jane@x.org', input_type=str".
    (re.compile(r"(input_value=).*?(, input_type=)"), rf"\1{REDACTED}\2"),
    # Credentials in URLs: scheme://user:password@host.
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"), r"\1***\2"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
)


# Every pattern above needs one of these in the text; most logged strings (event names, file names,
# operation types) have none, and skip the seven regular expressions.
_PATTERN_MARKERS = ("@", "Key (", "Failing row contains ", "DETAIL:", "[parameters: ", "input_value=")


def scrub(text: str) -> str:
    """Remove patient values and credentials from free text (error messages, tracebacks, SQL)."""
    if not any(marker in text for marker in _PATTERN_MARKERS):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redacted(key: str, value: Any) -> Any:
    if key in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, BaseException):
        return scrub(repr(value))
    if isinstance(value, Mapping):
        return {k: _redacted(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted("", item) for item in value]
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor: drop sensitive keys' values and scrub every string, nested ones included."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redacted(key, value)
    return event_dict


def _renderer(log_format: str, stream: TextIO) -> structlog.typing.Processor:
    use_console = log_format == "console" or (log_format == "auto" and stream.isatty())
    if use_console:
        return structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.processors.JSONRenderer()


def configure_logging(level: str = "INFO", log_format: str = "auto", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging through one redacting chain to ``stream`` (stderr by default).

    Safe to call again (tests do): it replaces the root handler instead of adding another.
    """
    stream = stream or sys.stderr
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Plain text, no frame locals: locals of a row-handling frame would hold the row.
        structlog.processors.format_exc_info,
        redact,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _renderer(log_format, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # SQLAlchemy logs parameters at INFO when echo is on; keep its loggers at WARNING whatever the level.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    # Alembic narrates every step at INFO; wardbulk logs one database_migrated event instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # APScheduler announces every run of every job at INFO; jobs log their own outcome.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger; events are past-tense snake_case: ``log.info("file_claimed", file=...)``."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger

"""Logs carry files, lines, fields and codes — never a patient's values, whatever raised them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from processor.adapters.database.models import User
from processor.logs import configure_logging, get_logger, scrub
from tests.conftest import Database

EMAIL = "zebedee.quixotic@example.org"
FIRST, LAST = "Zebedee", "Quixotic"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    yield stream
    configure_logging("WARNING", "json")


def assert_no_patient_values(text: str) -> None:
    for value in (EMAIL, FIRST, LAST, "zebedee"):
        assert value not in text


def test_a_database_integrity_error_about_a_patient_is_logged_without_their_values(
    database: Database, log_stream: io.StringIO
) -> None:
    """PostgreSQL puts the duplicate e-mail into DETAIL; parameters would carry the name. Neither shows."""
    row = {
        "username": "p1",
        "email": EMAIL,
        "first_name": FIRST,
        "last_name": LAST,
        "created_at": datetime.now(UTC),
    }
    with database.engine.begin() as connection:
        connection.execute(insert(User), row)
    log = get_logger("tests.logs")
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        try:
            connection.execute(insert(User), row | {"username": "p2"})
        except IntegrityError:
            log.exception("row_insert_failed", file="patients.csv", line=2, code="duplicate-email")
            raise
    output = log_stream.getvalue()
    assert_no_patient_values(output)
    event = json.loads(output.strip().splitlines()[-1])
    assert event["event"] == "row_insert_failed"
    assert (event["file"], event["line"], event["code"]) == ("patients.csv", 2, "duplicate-email")
    assert "IntegrityError" in event["exception"]


def test_sensitive_keys_are_dropped_and_free_text_is_scrubbed(log_stream: io.StringIO) -> None:
    get_logger("tests.logs").warning(
        "row_rejected",
        value=FIRST,
        email=EMAIL,
        column="last_name",
        message=f"contact {EMAIL} failed",
    )
    event = json.loads(log_stream.getvalue())
    assert event["value"] == event["email"] == "<redacted>"
    assert event["column"] == "last_name"
    assert event["message"] == "contact <email> failed"


def test_stdlib_loggers_go_through_the_same_redaction(log_stream: io.StringIO) -> None:
    logging.getLogger("sqlalchemy.pool").error(
        'duplicate key value violates unique constraint "uq_users_email"\n'
        f"DETAIL:  Key (email)=({EMAIL}) already exists."
    )
    logging.getLogger("apscheduler.scheduler").warning("Failing row contains (1, %s, %s).", FIRST, LAST)
    output = log_stream.getvalue()
    assert_no_patient_values(output)
    assert [json.loads(line)["logger"] for line in output.splitlines()] == [
        "sqlalchemy.pool",
        "apscheduler.scheduler",
    ]


def _fails_while_holding_a_patient_in_a_local(first: str, last: str) -> None:
    full_name = f"{first}{last}"
    raise ValueError(f"could not process a row of length {len(full_name)}")


def test_tracebacks_are_rendered_without_frame_locals(log_stream: io.StringIO) -> None:
    try:
        _fails_while_holding_a_patient_in_a_local(FIRST, LAST)
    except ValueError:
        get_logger("tests.logs").exception("row_crashed")
    output = log_stream.getvalue()
    assert "_fails_while_holding_a_patient_in_a_local" in output
    assert_no_patient_values(output)


def test_the_console_format_is_redacted_too() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "console", stream=stream)
    get_logger("tests.logs").info("file_claimed", file="a.csv", email=EMAIL)
    configure_logging("WARNING", "json")
    output = stream.getvalue()
    assert "file_claimed" in output and "a.csv" in output
    assert EMAIL not in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Key (mrn)=(000123) already exists.", "Key (mrn)=(<redacted>) already exists."),
        ("[parameters: ('Jane', 'Doe')]", "[parameters: <redacted>]"),
        ("input_value='Jane', input_type=str", "input_value=<redacted>, input_type=str"),
        ("postgresql://ward:s3cret@db/ward", "postgresql://ward:***@db/ward"),
        ("line 3 column email code type-error", "line 3 column email code type-error"),
    ],
)
def test_scrub_patterns(text: str, expected: str) -> None:
    assert scrub(text) == expected

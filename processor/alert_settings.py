"""``[alerts]``: where alerts go (e-mail over SMTP, webhooks) and when they are raised (issue 15).

Secrets are never in the configuration: an SMTP password is read, when an alert is sent, from the
environment variable ``password_env`` names or the file ``password_file`` names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ADDRESS = r"^[^@\s]+@[^@\s]+$"
CLOCK_TIME = r"(?:[01]\d|2[0-3]):[0-5]\d"
WORKING_HOURS = rf"^{CLOCK_TIME}-(?:{CLOCK_TIME}|24:00)$"
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SmtpChannel(BaseModel):
    """E-mail through an SMTP server: STARTTLS on port 587 by default, ``implicit`` TLS (port 465), or
    ``none`` (a relay on the host itself), and a login when ``username`` is set, never in cleartext."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["smtp"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    ca_file: Path | None = None  # a hospital's own certificate authority, for STARTTLS
    username: str | None = None
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    password_file: Path | None = None
    sender: str = Field(pattern=ADDRESS)
    recipients: list[Annotated[str, Field(pattern=ADDRESS)]] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _password_for_login(self) -> SmtpChannel:
        if self.username is not None and (self.password_env is None) == (self.password_file is None):
            raise ValueError("with a username, give exactly one of password_env and password_file")
        if self.username is not None and self.tls == "none":
            raise ValueError(
                "a login needs tls = 'starttls' or 'implicit': the password would go in cleartext"
            )
        return self


class WebhookChannel(BaseModel):
    """An HTTP POST of the alert as JSON (a chat or paging system's incoming webhook)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://\S+$")
    timeout_s: float = Field(default=10.0, gt=0)


Channel = Annotated[SmtpChannel | WebhookChannel, Field(discriminator="kind")]
Rule = Literal[
    "file_failed", "error_rate", "unclean_start", "file_waiting", "sender_silent", "notification_failed"
]
RULES: tuple[Rule, ...] = (
    "file_failed",
    "error_rate",
    "unclean_start",
    "file_waiting",
    "sender_silent",
    "notification_failed",
)


class AlertSettings(BaseModel):
    """``[alerts]``: the channels, the rules that are on, their thresholds and the throttle.

    ``working_hours`` and ``working_days`` are read in the wards' time zone (``timezone``): the hours a
    sender's silence counts (``[[senders]] silent_hours``). A span does not cross midnight; ``24:00``
    ends it at the day's end.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Channel] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=lambda: list(RULES))
    error_rate: float = Field(default=0.1, ge=0.0, le=1.0)  # a completed file with more failed rows
    throttle_minutes: float = Field(default=60.0, ge=0.0)  # one alert per rule, sender and type per window
    waiting_minutes: float = Field(default=30.0, gt=0.0)  # a file waiting in an inbox longer (file_waiting)
    processing_minutes: float = Field(default=120.0, gt=0.0)  # a file in progress longer (file_waiting)
    working_hours: str = Field(default="07:00-19:00", pattern=WORKING_HOURS)
    working_days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)
    check_every_s: int = Field(default=60, ge=1, le=3600)  # how often file_waiting and sender_silent look

    @model_validator(mode="after")
    def _hours_in_order(self) -> AlertSettings:
        start, end = self.working_minutes()
        if start >= end:
            raise ValueError(
                f"working_hours: {self.working_hours!r} ends before it starts (a span cannot cross midnight)"
            )
        return self

    def working_minutes(self) -> tuple[int, int]:
        """The working hours as minutes since midnight, (start, end); the end may be 1440 (24:00)."""
        start, end = (int(part[:2]) * 60 + int(part[3:]) for part in self.working_hours.split("-"))
        return start, end

    def working_weekdays(self) -> frozenset[int]:
        """The working days as ``date.weekday()`` numbers (Monday = 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.working_days)

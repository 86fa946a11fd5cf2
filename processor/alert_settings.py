"""``[alerts]``: where alerts go (e-mail over SMTP, webhooks) and when they are raised (issue 15).

Secrets are never in the configuration: an SMTP password is read, when an alert is sent, from the
environment variable ``password_env`` names or the file ``password_file`` names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ADDRESS = r"^[^@\s]+@[^@\s]+$"


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
Rule = Literal["file_failed", "error_rate", "unclean_start"]
RULES: tuple[Rule, ...] = ("file_failed", "error_rate", "unclean_start")


class AlertSettings(BaseModel):
    """``[alerts]``: the channels, the rules that are on, their threshold and the throttle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[Channel] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=lambda: list(RULES))
    error_rate: float = Field(default=0.1, ge=0.0, le=1.0)  # a completed file with more failed rows
    throttle_minutes: float = Field(default=60.0, ge=0.0)  # one alert per rule, sender and type per window

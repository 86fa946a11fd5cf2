"""Configuration: ``config/wardbulk.toml`` (or ``--config`` / ``WARDBULK_CONFIG``), overridden by environment.

Precedence, highest first: environment variables (``WARDBULK_<KEY>``, nested keys joined by ``__``, e.g.
``WARDBULK_OPERATIONS__IMPORT_PATIENTS__ENCODING=cp1252``), the TOML file, the defaults below.
Relative paths resolve against the working directory wardbulk runs in.

``load_settings`` is the only entry point; it raises ``ConfigError`` with one line naming the bad key.
"""

from __future__ import annotations

import codecs
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from processor.alert_settings import ADDRESS, AlertSettings, SmtpChannel
from processor.core.operation_kinds import OPERATION_KINDS, OperationType
from processor.errors import ConfigError
from processor.notification_settings import NotificationSettings
from processor.sender_settings import MARKER_PATTERN, SenderSettings, unique_names

DEFAULT_CONFIG_PATH = Path("config/wardbulk.toml")
CONFIG_ENV_VAR = "WARDBULK_CONFIG"
ENV_PREFIX = "WARDBULK_"
MIB = 1024 * 1024


class OperationSettings(BaseModel):
    """Per-operation behaviour, under ``[operations.<operation_type>]`` in the TOML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    encoding: str = Field(
        default="utf-8",
        description="Text encoding of input files. UTF-8 (with or without BOM) is always accepted; "
        "set e.g. 'cp1252' only for a sender known to write it.",
    )
    on_row_error: Literal["skip_row", "reject_file"] = "skip_row"
    max_error_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    done_marker: bool = False
    notify: bool = False
    # "upsert" (types with an upsert key): a row whose key is known updates that record, instead of
    # being refused as a duplicate.
    mode: Literal["insert", "upsert"] = "insert"
    # In upsert mode, a cell holding exactly this clears the value (an empty cell leaves it alone).
    clear_marker: str | None = Field(default=None, max_length=64, pattern=MARKER_PATTERN)
    # An .xlsx file's sheet to read, by name; None reads the first sheet.
    sheet: str | None = Field(default=None, min_length=1, max_length=31)

    @model_validator(mode="after")
    def _marker_of_upserts(self) -> OperationSettings:
        if self.clear_marker is not None and self.mode != "upsert":
            raise ValueError("clear_marker: only upsert mode clears values; set mode = 'upsert'")
        return self

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None


class OperationsSettingsBase(BaseModel):
    """What ``OperationsSettings`` has besides its fields: no unknown table, frozen, ``for_type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _upsert_where_there_is_a_key(self) -> OperationsSettingsBase:
        for kind in OPERATION_KINDS:
            if self.for_type(kind.operation_type).mode == "upsert" and kind.upsert_key is None:
                raise ValueError(f"{kind.name}.mode: {kind.name} has no upsert mode")
        return self

    def for_type(self, operation_type: OperationType) -> OperationSettings:
        """The settings of one operation type."""
        settings: OperationSettings = getattr(self, operation_type.value)
        return settings


def _operations_settings_model() -> type[OperationsSettingsBase]:
    """One ``OperationSettings`` field per operation descriptor, named like its TOML table."""
    fields: dict[str, Any] = {kind.name: (OperationSettings, OperationSettings()) for kind in OPERATION_KINDS}
    return create_model(
        "OperationsSettings",
        __base__=OperationsSettingsBase,
        __module__=__name__,
        __doc__="One ``OperationSettings`` per operation type; a missing table means the defaults.",
        **fields,
    )


# The fields come from the descriptors at run time; mypy sees a class it can use as a field's type
# (every access goes through ``for_type``, so it needs no field names).
if TYPE_CHECKING:

    class OperationsSettings(OperationsSettingsBase):
        """One ``OperationSettings`` per operation type; a missing table means the defaults."""

else:
    OperationsSettings = _operations_settings_model()


INTERVAL = re.compile(r"^(\d+)\s*([smh])$")
INTERVAL_SECONDS = {"s": 1, "m": 60, "h": 3600}


class ScheduleSettings(BaseModel):
    """A ``[[schedules]]`` entry: a report written on an interval (``every``) or a crontab (``cron``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report: Literal["occupancy", "patient_list", "admission_discharge", "bed_utilization", "export_patients"]
    every: str | None = None
    cron: str | None = None
    ward: str | None = None
    period: Literal["yesterday", "last_7_days", "last_30_days", "month_to_date"] | None = None
    name: str | None = None
    # Mailed as an attachment to these addresses, through [alerts]'s SMTP channel (with TLS).
    mail_to: list[Annotated[str, Field(pattern=ADDRESS)]] = Field(default_factory=list)

    @field_validator("every")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None and (not INTERVAL.match(value.strip()) or interval_seconds(value) == 0):
            raise ValueError('an interval is a number and s, m or h, e.g. "30s", "15m", "1h"')
        return value

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is None:
            return None
        fields = value.split()
        if len(fields) != 5:
            raise ValueError('a crontab has 5 fields: minute hour day month weekday, e.g. "0 6 * * mon-fri"')
        if any(ch.isdigit() for ch in fields[4]):
            raise ValueError(
                "write weekdays as names (mon-fri, sun): APScheduler 3 numbers them from Monday = 0, "
                "cron from Sunday = 0, so a number would be ambiguous"
            )
        # Imported here: APScheduler's import costs 30 ms that commands without a crontab need not pay.
        from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415

        try:
            CronTrigger.from_crontab(value, timezone=UTC)
        except ValueError as exc:
            raise ValueError(f"not a valid crontab: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleSettings:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of every and cron")
        return self

    @property
    def schedule_name(self) -> str:
        """The name its runs are claimed under: ``name``, or one derived from what it does."""
        if self.name:
            return self.name
        parts = [self.report, self.ward or "", self.period or "", self.every or self.cron or ""]
        return ":".join(parts)


def interval_seconds(every: str) -> int:
    """Seconds of an interval like "30s", "15m", "1h"."""
    match = INTERVAL.match(every.strip())
    assert match is not None
    return int(match.group(1)) * INTERVAL_SECONDS[match.group(2)]


class Settings(BaseSettings):
    """The effective configuration of one wardbulk process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database_url: str = "sqlite:///var/wardbulk.sqlite3"
    inbox_dir: Path = Path("inbox")
    outbox_dir: Path = Path("outbox")
    archive_dir: Path = Path("archive")
    stability_window_s: float = Field(default=2.0, ge=0.0)
    rescan_interval_s: float = Field(default=30.0, gt=0.0)
    observer: Literal["native", "polling"] = "native"
    poll_interval_s: float = Field(default=1.0, gt=0.0)
    max_file_bytes: int = Field(default=512 * MIB, gt=0)
    archive_retention_days: int = Field(default=30, ge=0)
    # Result, error and summary files, notifications, rejected originals and reports (all may hold
    # patient data); at least a day, so that a poller always finds its summary.
    outbox_retention_days: int = Field(default=30, ge=1)
    # Room kept free on the processing, outbox and archive filesystems: a file that would eat into it
    # is not started until there is room (the daemon pauses; issue 18).
    free_space_reserve_mb: int = Field(default=64, ge=0)
    chunk_size: int = Field(default=5000, ge=1, le=100_000)
    error_detail_limit: int = Field(default=100_000, ge=1)
    dashboard_debounce_s: float = Field(default=5.0, ge=0.0)
    # Prometheus metrics at http://<host:port>/metrics, served by the daemon (None: not served).
    metrics_address: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.\-]+:\d{1,5}$")
    # The IANA time zone the wards live in: schedules, report periods ("yesterday") and the day
    # boundaries of reports and history filters follow it; stored times stay UTC.
    timezone: str = "UTC"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    operations: OperationsSettings = OperationsSettings()
    schedules: list[ScheduleSettings] = Field(default_factory=list)
    senders: list[SenderSettings] = Field(default_factory=list)
    alerts: AlertSettings = AlertSettings()
    notifications: NotificationSettings = NotificationSettings()

    @field_validator("senders")
    @classmethod
    def _unique_senders(cls, senders: list[SenderSettings]) -> list[SenderSettings]:
        return unique_names(senders)

    @model_validator(mode="after")
    def _patient_data_mailed_over_tls(self) -> Settings:
        """A schedule's mail_to, and e-mailed notifications, need an SMTP channel with TLS: both
        carry patient data."""
        wanted = [
            key
            for key, asked in (
                ("schedules.mail_to", any(schedule.mail_to for schedule in self.schedules)),
                ("notifications.email", self.notifications.email),
            )
            if asked
        ]
        if wanted and self.patient_mailer() is None:
            raise ValueError(
                f"{' and '.join(wanted)}: patient data is mailed through an [[alerts.channels]] of kind "
                "'smtp' with tls = 'starttls' or 'implicit'; there is none"
            )
        return self

    def patient_mailer(self) -> SmtpChannel | None:
        """The SMTP channel that mails patient data (scheduled reports, caregiver notifications): the
        first one with TLS."""
        return next((c for c in self.alerts.channels if isinstance(c, SmtpChannel) and c.tls != "none"), None)

    @model_validator(mode="after")
    def _senders_markers_clear(self) -> Settings:
        """A sender's clear_marker needs upsert mode, its own or its operations'."""
        for index, sender in enumerate(self.senders):
            if sender.clear_marker is None or sender.mode is not None:
                continue
            if not any(self.operations.for_type(o).mode == "upsert" for o in sender.operations):
                raise ValueError(
                    f"senders.{index}.clear_marker: only upsert mode clears values; set its mode"
                )
        return self

    def sender_of(self, operation_type: OperationType, file_name: str) -> list[SenderSettings]:
        """The senders that claim a file of this name for this operation (one, none, or an ambiguity)."""
        return [sender for sender in self.senders if sender.sends(operation_type, file_name)]

    def sender_folders(self) -> dict[tuple[OperationType, str], str]:
        """(operation, inbox subfolder) → sender name, for the senders that have their own folder."""
        return {
            (operation, sender.folder): sender.name
            for sender in self.senders
            if sender.folder
            for operation in sender.operations
        }

    def sender_named(self, name: str) -> SenderSettings | None:
        """The configured sender of this name, if there still is one."""
        return next((sender for sender in self.senders if sender.name == name), None)

    @field_validator("database_url")
    @classmethod
    def _parsable_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (e.g. sqlite:///path or postgresql://...)") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite and postgresql databases are supported")
        return value

    @field_validator("metrics_address")
    @classmethod
    def _real_port(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
            raise ValueError("the port must be between 1 and 65535")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError('not an IANA time zone name (e.g. "Europe/Amsterdam", "UTC")') from None
        return value

    def zone(self) -> ZoneInfo:
        """The wards' time zone (``timezone``) as a tzinfo."""
        return ZoneInfo(self.timezone)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment over TOML over defaults; ``init_settings`` carries the TOML file's content."""
        return (env_settings, init_settings)

    def masked_database_url(self) -> str:
        """The database URL with any password replaced by ``***``, safe to print or log."""
        return make_url(self.database_url).render_as_string(hide_password=True)

    def effective(self) -> dict[str, Any]:
        """Every key with its effective value, secrets masked, in TOML-friendly types."""
        data = self.model_dump(mode="json")
        data["database_url"] = self.masked_database_url()
        for channel in data["alerts"]["channels"]:
            if "url" in channel:  # an incoming webhook's URL is a bearer secret: its host only
                channel["url"] = _host_only(channel["url"])
        return data


def _host_only(url: str) -> str:
    """``scheme://host/***``: what a secret-bearing URL may show."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/***"


def config_path_from(explicit: Path | None) -> Path | None:
    """The config file to read: ``--config``, else ``WARDBULK_CONFIG``, else the default if present."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_settings(config_path: Path | None = None) -> Settings:
    """Read and validate the configuration. Raises ``ConfigError`` with one line naming the key."""
    path = config_path_from(config_path)
    file_values = _read_toml(path) if path is not None else {}
    try:
        return Settings(**file_values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, path)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _one_line(exc: ValidationError, path: Path | None) -> str:
    """Name every bad key and its environment variable, and where the bad value came from (the variable
    when it is set, else the file); never echo the rejected value (it may be a secret)."""
    problems, sources = [], set()
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        env_name = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        from_environment = env_name in os.environ
        sources.add("environment" if from_environment else f"config file {path}" if path else "configuration")
        problems.append(f"{key}: {message} (env {env_name})")
    return f"invalid {' and '.join(sorted(sources))}: " + "; ".join(problems)


def unknown_environment_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``WARDBULK_*`` variables that name no setting (a typo is otherwise ignored silently), each with
    the known variable it most resembles, if any. ``WARDBULK_CONFIG`` and ``WARDBULK_TEST_*`` are known."""
    environ = os.environ if environ is None else environ
    known = _known_variables()
    unknown = [
        name
        for name in sorted(environ)
        if name.startswith(ENV_PREFIX) and name not in known and not name.startswith(ENV_PREFIX + "TEST_")
    ]
    return [(name, _resembling(name, known)) for name in unknown]


def _resembling(name: str, known: list[str]) -> str | None:
    """The known variable ``name`` most resembles, compared without the shared prefix."""
    tails = {variable.removeprefix(ENV_PREFIX): variable for variable in known}
    found = get_close_matches(name.removeprefix(ENV_PREFIX), list(tails), n=1, cutoff=0.75)
    return tails[found[0]] if found else None


def _known_variables() -> list[str]:
    names = [CONFIG_ENV_VAR] + [ENV_PREFIX + field.upper() for field in Settings.model_fields]
    for kind in OPERATION_KINDS:
        prefix = f"{ENV_PREFIX}OPERATIONS__{kind.name.upper()}"
        names += [prefix] + [f"{prefix}__{field.upper()}" for field in OperationSettings.model_fields]
    return names


__all__ = ["OperationSettings", "Settings", "load_settings", "unknown_environment_variables"]

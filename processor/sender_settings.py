"""``[[senders]]``: the upstream systems whose files come in their own shape (issue 14).

A sender is recognised by its file names (globs, without regard to case) in the inbox folders of its
operations; a file that two senders claim is refused (``ambiguous-sender``), never guessed. What a
sender sets (aliases, value maps, date formats, encoding, delimiter, error policy) applies to its files
only. ``wardbulk config check`` names the key of anything wrong: an alias to a column its operations do
not have, two aliases that read alike, a value map of an unknown column, a date format that cannot
read a date or has a two-digit year.
"""

from __future__ import annotations

import codecs
from datetime import date, datetime
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from processor.adapters.folders import VALIDATE_FOLDER
from processor.core.operation_kinds import TRIGGER_TYPES, OperationType, format_of, kind_of
from processor.core.senders import SenderShape, label_key, value_key

SAMPLE_DATE = date(1999, 12, 31)
# A clear marker is compared with a trimmed cell: spaces at its ends could never match.
MARKER_PATTERN = r"^\S(?:.*\S)?$"
TIME_FIELDS = (
    "%H",
    "%I",
    "%M",
    "%S",
    "%f",
    "%p",
    "%z",
    "%Z",
    "%c",
    "%X",
    "%x",
)  # every field distinct: a format that loses one cannot read it back


class SenderSettings(BaseModel):
    """One ``[[senders]]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    files: list[str] = Field(default_factory=list, description="file-name globs, e.g. 'ADT_*.csv'")
    # Its own inbox subfolder, inbox/<op>/<folder>/ (no "_" or "~": a claim's name carries it).
    folder: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
    operations: list[OperationType] = Field(
        default_factory=lambda: [t for t in OperationType if t not in TRIGGER_TYPES]
    )
    columns: dict[str, str] = Field(default_factory=dict, description="alias = column")
    values: dict[str, dict[str, str]] = Field(default_factory=dict, description="column = {value = ours}")
    date_formats: list[str] = Field(default_factory=list)
    encoding: str | None = None
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    on_row_error: Literal["skip_row", "reject_file"] | None = None
    max_error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    mode: Literal["insert", "upsert"] | None = None  # see OperationSettings.mode
    clear_marker: str | None = Field(default=None, max_length=64, pattern=MARKER_PATTERN)
    sheet: str | None = Field(default=None, min_length=1, max_length=31)  # an .xlsx file's sheet
    # Alert (rule sender_silent) when no file came from it for this many working hours ([alerts]
    # working_hours and working_days); None: never.
    silent_hours: float | None = Field(default=None, gt=0.0)

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        try:
            return None if value is None else codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None

    @field_validator("date_formats")
    @classmethod
    def _readable_formats(cls, formats: list[str]) -> list[str]:
        for date_format in formats:
            if "%y" in date_format:
                raise ValueError(f"{date_format!r}: a two-digit year is ambiguous; use %Y")
            if any(field in date_format for field in TIME_FIELDS):
                raise ValueError(f"{date_format!r}: a date format has no time (a time would be dropped)")
            try:
                read_back = datetime.strptime(SAMPLE_DATE.strftime(date_format), date_format).date()
            except ValueError:
                read_back = None
            if read_back != SAMPLE_DATE:
                raise ValueError(f"{date_format!r} cannot read a whole date (it needs a day, month and %Y)")
        return formats

    @model_validator(mode="after")
    def _recognisable(self) -> SenderSettings:
        if not self.files and self.folder is None:
            raise ValueError("give files (name patterns), folder (its inbox subfolder), or both")
        if self.folder is not None and self.folder.lower() == VALIDATE_FOLDER:
            raise ValueError(f"folder: {VALIDATE_FOLDER!r} is every inbox's dry-run folder")
        return self

    @model_validator(mode="after")
    def _upsert_where_there_is_a_key(self) -> SenderSettings:
        if self.mode == "upsert" and not any(kind_of(o).upsert_key for o in self.operations):
            raise ValueError(f"mode: none of {self._named_operations()} has an upsert mode")
        if self.mode == "insert" and self.clear_marker is not None:
            raise ValueError("clear_marker: only upsert mode clears values, and this sender's mode is insert")
        return self

    @model_validator(mode="after")
    def _columns_its_operations_have(self) -> SenderSettings:
        known = {column for operation in self.operations for column in format_of(operation).columns}
        seen: dict[str, str] = {}
        for alias, column in self.columns.items():
            if column not in known:
                raise ValueError(f"columns.{alias}: {column!r} is not a column of {self._named_operations()}")
            if label_key(alias) in seen:
                raise ValueError(f"columns.{alias}: reads the same as the alias {seen[label_key(alias)]!r}")
            seen[label_key(alias)] = alias
        for column, mapping in self.values.items():
            if column not in known:
                raise ValueError(f"values.{column}: not a column of {self._named_operations()}")
            keys = [value_key(theirs) for theirs in mapping]
            for theirs in mapping:
                if keys.count(value_key(theirs)) > 1:
                    raise ValueError(f"values.{column}.{theirs}: reads the same as another value of the map")
        return self

    def _named_operations(self) -> str:
        return ", ".join(operation.value for operation in self.operations)

    def sends(self, operation_type: OperationType, file_name: str) -> bool:
        """Whether a file of this name, for this operation, is this sender's."""
        lowered = file_name.lower()
        return operation_type in self.operations and any(
            fnmatchcase(lowered, glob.lower()) for glob in self.files
        )

    def shape(self) -> SenderShape:
        """What reading its files needs (``core.senders``)."""
        return SenderShape(
            name=self.name,
            aliases={label_key(alias): column for alias, column in self.columns.items()},
            values={
                column: {value_key(theirs): ours for theirs, ours in mapping.items()}
                for column, mapping in self.values.items()
            },
            date_formats=tuple(self.date_formats),
            delimiter=self.delimiter,
        )


def unique_names(senders: list[SenderSettings]) -> list[SenderSettings]:
    """The senders, refused if two share a name (the name is what the history records) or a folder."""
    names = [sender.name for sender in senders]
    folders = [sender.folder.lower() for sender in senders if sender.folder]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"two senders are named {name!r}")
    for folder in folders:
        if folders.count(folder) > 1:
            raise ValueError(f"two senders have the folder {folder!r}")
    return senders

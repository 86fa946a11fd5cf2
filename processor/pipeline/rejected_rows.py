"""``<stem>.op<N>.rejected.csv``: the rows of a file that failed, for its sender to fix and send again.

Like Oracle SQL*Loader's "bad file": the input's own header and the failed rows exactly as they were
read (cells not trimmed, ragged rows as ragged, quoted line breaks kept), in the input's delimiter and
encoding (its UTF-8 byte order mark too, or the configured fallback encoding when the file needed it).
It is meant to go back into the inbox, so it is NOT made safe for Excel: a cell ``=1+1`` stays a formula
there; result.csv and errors.csv are the files for reading. Absent when no row failed.

The rows are gathered while the file is read, before its encoding is known for sure (a later line may
need the fallback), in a scratch file beside the spool; at the end they are written in that encoding.
A failed row that the input's encoding cannot hold (a file that mixed UTF-8 and its fallback) is left
out and counted (``rejected_rows_unwritable`` in summary.json); errors.csv still lists it.

For a workbook (.xlsx) the file is a CSV all the same, UTF-8 with a byte order mark and commas: the
sheet's header and the failed rows' cells as read (``xlsx_input``'s texts), to be fixed and sent as CSV.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from processor.core.csv_reading import UTF8_BOM, Decoding, Record


@dataclass
class RejectedRows:
    """The failed rows of one file (see the module); ``scratch`` holds them until ``finish``."""

    scratch: Path
    target: Path
    header: list[str]
    delimiter: str
    count: int = 0
    unwritable: int = 0
    _scratch: IO[str] | None = field(default=None, repr=False)

    def add(self, record: Record) -> None:
        """Keep a failed row as it was read."""
        if self._scratch is None:
            self._scratch = self.scratch.open("w", encoding="utf-8", newline="")
        csv.writer(self._scratch).writerow(record.raw)
        self.count += 1

    def finish(self, decoding: Decoding) -> int:
        """Write the rejected file (a partial, fsynced) in the input's encoding; returns the rows in it."""
        if self._scratch is None:
            return 0
        self._scratch.close()
        written = 0
        with self.scratch.open(encoding="utf-8", newline="") as rows, self.target.open("wb") as out:
            if decoding.bom and not decoding.fallback_used:
                out.write(UTF8_BOM)
            out.write(self._encoded(self.header, decoding.encoding))
            for row in csv.reader(rows):
                try:
                    out.write(self._encoded(row, decoding.encoding))
                    written += 1
                except UnicodeEncodeError:
                    self.unwritable += 1
            out.flush()
            os.fsync(out.fileno())
        self.scratch.unlink()
        return written

    def discard(self) -> None:
        """Drop what was gathered (the file was rejected as a whole before its end)."""
        if self._scratch is not None:
            self._scratch.close()
        self.scratch.unlink(missing_ok=True)

    def _encoded(self, row: list[str], encoding: str) -> bytes:
        text = io.StringIO()
        csv.writer(text, delimiter=self.delimiter, lineterminator="\r\n").writerow(row)
        return text.getvalue().encode(encoding)

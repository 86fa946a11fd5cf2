"""Report files in ``outbox/reports/``: named by type, ward and time, written atomically and Excel-safe,
with a stable ``<type>[-<ward>]-latest.csv`` copy beside them."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TextIO

from processor.adapters.folders import REPORTS_FOLDER
from processor.adapters.outbox import (
    PARTIAL_SUFFIX,
    ExcelCsvWriter,
    fsync_directory,
    refresh_latest,
    report_partial,
)
from processor.core.excel_safe import neutralised_row
from processor.core.report_request import ReportRequest
from processor.reports.queries import ReportTable


def reports_folder(outbox_dir: Path) -> Path:
    return outbox_dir / REPORTS_FOLDER


def write_table(path: Path, table: ReportTable) -> None:
    """Write ``table`` to ``path`` atomically (temporary name, fsync, rename), Excel-safe."""
    partial = path.with_name(f".{path.name}{PARTIAL_SUFFIX}")
    writer = ExcelCsvWriter(partial, table.header)
    for row in table.rows:
        writer.write(row)
    writer.close()
    os.replace(partial, path)
    fsync_directory(path.parent)


def publish_report(outbox_dir: Path, request: ReportRequest, table: ReportTable, name: str) -> Path:
    """Write the report under ``name`` and refresh the ``latest`` copy; returns the report's path."""
    folder = reports_folder(outbox_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    write_table(path, table)
    refresh_latest(path)
    return path


def write_partial_report(outbox_dir: Path, table: ReportTable, name: str, owner_token: str) -> Path:
    """Write a report of a file's transaction under its partial name; ``publish_reports`` finishes it."""
    partial = report_partial(outbox_dir, name, owner_token)
    partial.parent.mkdir(parents=True, exist_ok=True)
    writer = ExcelCsvWriter(partial, table.header)
    for row in table.rows:
        writer.write(row)
    writer.close()
    return partial


def write_to_stream(stream: TextIO, table: ReportTable) -> None:
    """Write the report to a stream (stdout for scripts): formula cells neutralised, no BOM."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow(neutralised_row(row))

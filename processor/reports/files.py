"""Report files in ``outbox/reports/``: named by type, ward and time, written atomically and Excel-safe,
with a stable ``<type>[-<ward>]-latest.csv`` copy beside them."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import TextIO

from processor.adapters.folders import REPORTS_FOLDER
from processor.adapters.outbox import PARTIAL_SUFFIX, ExcelCsvWriter, fsync_directory
from processor.core.excel_safe import neutralise
from processor.core.report_request import ReportRequest, latest_name
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
    latest = folder / latest_name(request)
    partial = latest.with_name(f".{latest.name}{PARTIAL_SUFFIX}")
    shutil.copyfile(path, partial)
    os.replace(partial, latest)
    return path


def write_to_stream(stream: TextIO, table: ReportTable) -> None:
    """Write the report to a stream (stdout for scripts): formula cells neutralised, no BOM."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow([neutralise(cell) if isinstance(cell, str) else cell for cell in row])

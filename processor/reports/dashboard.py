"""``outbox/dashboard.html``: the seed's operation-history page as one self-contained file.

Inline CSS, JS and SVG; no network access (hospital networks are often closed). Statistics cards (all
time), filters by type, status and date range (also from the URL fragment, e.g.
``#status=failed&type=import_patients``; the filters write it back, so a reload keeps them), the
operations table with a success-rate bar, duration and links to each operation's outbox files and
report, a detail panel per operation, and a chart of operations and failures per day. The page reloads
itself every minute while open (not while a detail panel is open).

The page stays small whatever the history: the cards count all time with SQL aggregates, and the table
holds the operations of the last ``WINDOW_DAYS`` days only, newest first, at most ``TABLE_LIMIT``, with
a note of what is left out and the ``wardbulk ops list`` command that shows it. The daemon builds it on
a thread of its own (``DashboardWorker``), so file processing never waits for it.

Every value that comes from a file or the database (file names included) is HTML-escaped.

Times and days are those of the wards' zone (``timezone``): the table's times, the chart's days, the
date filters and the window's first day are local, so they agree with ``wardbulk ops list --since``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine

from processor.adapters.database.history import (
    HistoryFilter,
    count_operations,
    list_operations,
    operation_totals,
)
from processor.adapters.folders import REPORTS_FOLDER
from processor.adapters.outbox import (
    PARTIAL_SUFFIX,
    OutboxFiles,
    fsync_directory,
    removed_on_failure,
    report_operation_id,
)
from processor.core.clock import is_utc
from processor.core.operation_kinds import OperationType

DASHBOARD_NAME = "dashboard.html"
CHART_DAYS = 30
WINDOW_DAYS = 30  # the table's operations: the last 30 days (the chart's), today included
TABLE_LIMIT = 2000  # at most this many rows, so that the page opens fast from a share
RELOAD_S = 60
OUTPUT_KINDS = ("result.csv", "errors.csv", "rejected.csv", "summary.json")
TIME_FIELDS = ("created_at", "started_at", "completed_at", "outputs_purged_at")

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2733;background:#f6f8fa}
h1{font-size:1.4rem;margin:0 0 1rem}.cards{display:flex;gap:1rem;margin-bottom:1rem}
.card{background:#fff;border-radius:8px;padding:.8rem 1.2rem;box-shadow:0 1px 3px #0002;min-width:8rem}
.card b{display:block;font-size:1.6rem}.filters{display:flex;gap:.6rem;margin:1rem 0;flex-wrap:wrap}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.35rem .5rem;border-bottom:1px solid #e3e7ec;
text-align:left;font-size:.9rem;vertical-align:top}th{background:#eef2f6}.bar{background:#e3e7ec;width:6rem;height:.6rem;
border-radius:3px}.bar span{display:block;height:100%;border-radius:3px;background:#2e9e5b}
.failed{color:#b42318}.processing,.pending{color:#b54708}.completed{color:#067647}details{font-size:.85rem}
svg{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002}
.strays{background:#fef3f2;border:1px solid #fda29b;border-radius:8px;padding:.6rem 1rem;margin-bottom:1rem}.note{font-size:.9rem;color:#475467}
.purged{color:#667085;font-style:italic}
"""

SCRIPT = """
const rows = () => Array.from(document.querySelectorAll('#operations tbody tr'));
function applyFilters() {
  const type = document.getElementById('f-type').value, status = document.getElementById('f-status').value;
  const from = document.getElementById('f-from').value, to = document.getElementById('f-to').value;
  let shown = 0;
  for (const row of rows()) {
    const d = row.dataset, ok = (!type || d.type === type) && (!status || d.status === status)
      && (!from || d.day >= from) && (!to || d.day <= to);
    row.hidden = !ok; if (ok) shown++;
  }
  document.getElementById('shown').textContent = shown;
}
function fromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [key, id] of [['type','f-type'],['status','f-status'],['from','f-from'],['to','f-to']])
    if (params.has(key)) document.getElementById(id).value = params.get(key);
}
function toFragment() {
  const params = new URLSearchParams();
  for (const [key, id] of [['type','f-type'],['status','f-status'],['from','f-from'],['to','f-to']])
    if (document.getElementById(id).value) params.set(key, document.getElementById(id).value);
  try { history.replaceState(null, '', '#' + params.toString()); } catch (e) { /* a file: page may refuse */ }
}
document.querySelectorAll('.filters select, .filters input').forEach(e => e.addEventListener('input', () => {
  applyFilters(); toFragment();
}));
fromFragment(); applyFilters();
// Reload while open, to show new operations; not while the reader has a detail panel open.
setInterval(() => { if (!document.querySelector('details[open]')) location.reload(); }, RELOAD_MS);
"""


def _links(outbox_dir: Path, operation: dict[str, Any], reports: list[str]) -> list[tuple[str, str]]:
    """(label, path relative to the outbox) for each output file of the operation that exists, then
    each report it wrote (``reports``: their names in outbox/reports/)."""
    files = OutboxFiles.for_operation(
        outbox_dir,
        OperationType(operation["operation_type"]),
        operation["input_file"] or "",
        operation["id"],
        "",
    )
    links = [
        (path.name.rsplit(".", 2)[1], path.relative_to(outbox_dir).as_posix())
        for path in files.existing(OUTPUT_KINDS)
    ]
    return links + [("report", f"{REPORTS_FOLDER}/{name}") for name in sorted(reports)]


def reports_by_operation(outbox_dir: Path) -> dict[int, list[str]]:
    """The report files in outbox/reports/ by the operation that wrote them (the ``op<N>`` in their
    names; scheduled reports and the ``-latest`` copies have none): one listing for the whole page."""
    found: dict[int, list[str]] = {}
    try:
        entries = list(os.scandir(outbox_dir / REPORTS_FOLDER))
    except FileNotFoundError:
        return found
    for entry in entries:
        operation_id = report_operation_id(entry.name)
        if operation_id is not None and not entry.name.startswith(".") and entry.is_file():
            found.setdefault(operation_id, []).append(entry.name)
    return found


def _files_cell(outbox_dir: Path, op: dict[str, Any], reports: list[str]) -> str:
    """Links to the operation's files, or when retention deleted them, the day it did."""
    purged = op.get("outputs_purged_at")
    if purged:
        return f'<span class="purged">purged {escape(str(purged)[:10])}</span>'
    links = _links(outbox_dir, op, reports)
    return " ".join(f'<a href="{escape(quote(path))}">{label}</a>' for label, path in links)


def _row(outbox_dir: Path, op: dict[str, Any], reports: list[str]) -> str:
    day = (op["created_at"] or "")[:10]
    rate = max(0.0, min(100.0, float(op["success_rate"])))
    duration = f"{op['duration_s']:.1f}s" if op["duration_s"] is not None else ""
    links = _files_cell(outbox_dir, op, reports)
    detail = "".join(
        f"<div><b>{escape(key)}</b>: {escape(str(value))}</div>"
        for key, value in op.items()
        if value not in (None, "")
    )
    return (
        f'<tr data-type="{escape(op["operation_type"])}" data-status="{escape(op["status"])}" '
        f'data-day="{escape(day)}"><td>{op["id"]}</td><td>{escape((op["created_at"] or "")[:19])}</td>'
        f'<td>{escape(op["operation_type"])}</td><td class="{escape(op["status"])}">{escape(op["status"])}</td>'
        f"<td>{escape(op['input_file'] or '')}{_sender(op)}</td>"
        f"<td>{op['total_records']} / {op['successful_records']} / "
        f'{op["failed_records"]}</td><td><div class="bar" title="{rate:.0f}%"><span style="width:{rate:.0f}%">'
        f"</span></div>{rate:.0f}%</td><td>{duration}</td><td>{links}</td>"
        f"<td><details><summary>details</summary>{detail}</details></td></tr>"
    )


def _sender(op: dict[str, Any]) -> str:
    """Who sent the file, under its name, when a configured sender did; a dry run says so."""
    notes = [f"from {op['sender']}"] if op.get("sender") else []
    notes += ["dry run"] if op.get("dry_run") else []
    return f'<div class="sender">{escape(", ".join(notes))}</div>' if notes else ""


def _chart(operations: list[dict[str, Any]], now: datetime) -> str:
    """Bars of operations (grey) and failures (red) per day over the last CHART_DAYS days."""
    per_day = Counter((op["created_at"] or "")[:10] for op in operations)
    failed = Counter((op["created_at"] or "")[:10] for op in operations if op["status"] == "failed")
    days = [(now.date().toordinal() - offset) for offset in range(CHART_DAYS - 1, -1, -1)]
    labels = [datetime.fromordinal(day).date().isoformat() for day in days]
    peak = max([per_day[label] for label in labels] + [1])
    bars = []
    for index, label in enumerate(labels):
        x, total, bad = 10 + index * 20, per_day[label], failed[label]
        height, bad_height = 100 * total / peak, 100 * bad / peak
        bars.append(
            f'<rect x="{x}" y="{110 - height:.1f}" width="14" height="{height:.1f}" fill="#9aa7b5">'
            f"<title>{label}: {total} operations, {bad} failed</title></rect>"
            f'<rect x="{x}" y="{110 - bad_height:.1f}" width="14" height="{bad_height:.1f}" fill="#d92d20"/>'
        )
    return (
        f'<svg id="chart" width="{20 + 20 * CHART_DAYS}" height="130" role="img" '
        f'aria-label="operations and failures per day">{"".join(bars)}'
        f'<text x="10" y="125" font-size="10">{labels[0]}</text>'
        f'<text x="{20 * CHART_DAYS - 60}" y="125" font-size="10">{labels[-1]}</text></svg>'
    )


def _options(values: list[str]) -> str:
    return "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)


def _strays(strays: Sequence[str]) -> str:
    """A warning listing the inbox entries no operation will take (a mistyped folder, say)."""
    if not strays:
        return ""
    items = "".join(f"<li><code>inbox/{escape(stray)}</code></li>" for stray in strays)
    return (
        '<div class="strays" id="strays"><b>Not processed:</b> these inbox entries are outside the '
        f"operation folders (inbox/&lt;operation&gt;/); move each into the right one.<ul>{items}</ul></div>"
    )


def _headline(totals: dict[str, Any]) -> str:
    """Files first (a failed file is what a sender must act on), records beside them."""
    finished = totals["completed"] + totals["failed"]
    if not finished:
        return "No file has finished yet."
    files = 100 * totals["completed"] / finished
    return (
        f'<b id="file-rate">{files:.1f}% of files succeeded</b> ({totals["failed"]} failed of {finished} '
        f"finished); {totals['success_rate']:.1f}% of their records."
    )


@dataclass(frozen=True)
class Window:
    """What the table holds of the history: the operations since ``since`` (``in_window`` of them)."""

    since: datetime
    in_window: int


def _window_note(operations: list[dict[str, Any]], totals: dict[str, Any], window: Window | None) -> str:
    """A line saying which operations the table holds, and how to see the others."""
    if window is None:
        return ""
    since = window.since.date().isoformat()
    note = f"The table shows the {len(operations)} newest operations since {since}"
    left_out = totals["operations"] - len(operations)
    if left_out <= 0:
        return f'<p class="note">{note}.</p>'
    oldest = min((op["id"] for op in operations), default=None)
    command = "wardbulk ops list" + (f" --before {oldest}" if oldest is not None else "")
    return (
        f'<p class="note">{note} ({window.in_window} in that time); {left_out} older or more are left out: '
        f"<code>{escape(command)}</code> lists them.</p>"
    )


def render_dashboard(
    operations: list[dict[str, Any]],
    totals: dict[str, Any],
    outbox_dir: Path,
    now: datetime,
    window: Window | None = None,
    strays: Sequence[str] = (),
) -> str:
    """The whole page, from ``ops list`` and ``ops stats`` data (``totals`` for all time)."""
    cards = "".join(
        f'<div class="card" id="card-{key}"><b>{totals[key]}</b>{label}</div>'
        for key, label in (
            ("operations", "total"),
            ("completed", "completed"),
            ("in_progress", "in progress"),
            ("failed", "failed"),
        )
    )
    types = sorted({op["operation_type"] for op in operations})
    statuses = ["pending", "processing", "completed", "failed"]
    reports = reports_by_operation(outbox_dir)
    rows = "".join(_row(outbox_dir, op, reports.get(op["id"], [])) for op in operations)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>wardbulk operations</title>'
        f"<style>{STYLE}</style></head><body><h1>wardbulk operations</h1>"
        f"<p>Generated {escape(now.isoformat(timespec='seconds'))}. {_headline(totals)}</p>{_strays(strays)}"
        f'<div class="cards">{cards}</div>{_chart(operations, now)}'
        f"{_window_note(operations, totals, window)}"
        f'<div class="filters"><label>Type <select id="f-type"><option value="">all</option>{_options(types)}'
        f'</select></label><label>Status <select id="f-status"><option value="">all</option>'
        f'{_options(statuses)}</select></label><label>From <input id="f-from" type="date"></label>'
        f'<label>To <input id="f-to" type="date"></label><span><b id="shown">{len(operations)}</b> shown</span>'
        f'</div><table id="operations"><thead><tr><th>id</th><th>created</th><th>type</th><th>status</th>'
        f"<th>file</th><th>records / ok / failed</th><th>success</th><th>duration</th><th>files</th><th></th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f"<script>const RELOAD_MS = {RELOAD_S * 1000};{SCRIPT}</script></body></html>"
    )


def write_dashboard(outbox_dir: Path, html: str) -> Path:
    """Write ``outbox/dashboard.html`` atomically."""
    path = outbox_dir / DASHBOARD_NAME
    with removed_on_failure(path.with_name(f".{path.name}{PARTIAL_SUFFIX}")) as partial:
        with partial.open("w", encoding="utf-8") as handle:
            handle.write(html)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    fsync_directory(outbox_dir)
    return path


def in_zone(operations: list[dict[str, Any]], zone: tzinfo) -> list[dict[str, Any]]:
    """The operations with their times (ISO text, UTC as stored) as times of ``zone``, with its offset:
    the page's days (table, chart, filters) are then local days. Unchanged in UTC."""
    if is_utc(zone):
        return operations
    return [
        {
            **op,
            **{
                key: datetime.fromisoformat(op[key]).astimezone(zone).isoformat()
                for key in TIME_FIELDS
                if op.get(key)
            },
        }
        for op in operations
    ]


def refresh_dashboard(
    engine: Engine,
    outbox_dir: Path,
    now: datetime,
    limit: int = TABLE_LIMIT,
    strays: Sequence[str] = (),
    zone: tzinfo = UTC,
) -> Path:
    """Regenerate ``outbox/dashboard.html`` from the database: totals for all time, the table for the
    last ``WINDOW_DAYS`` days (local days of ``zone``, today included; the newest ``limit`` operations
    of them), and the inbox's ``strays`` (entries outside the operation folders, never processed), if
    any."""
    now = now.astimezone(zone)
    since = now - timedelta(days=WINDOW_DAYS - 1)
    recent = HistoryFilter(since=since.date(), limit=limit, zone=zone)
    operations = in_zone(list_operations(engine, recent), zone)
    totals = operation_totals(engine)  # the cards show no durations: no walk along the duration index
    in_window = count_operations(engine, recent)
    page = render_dashboard(operations, totals, outbox_dir, now, Window(since, in_window), strays)
    return write_dashboard(outbox_dir, page)

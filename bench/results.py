"""Figures, the table printed with Rich, ``results.json`` and ``RESULTS.md``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TIMES = "\u00d7"  # the multiplication sign of ratios (ruff would flag it written out)
COLUMNS = ("case", "figure", "value", "raw limit", "ratio", "target", "met")


@dataclass(frozen=True)
class Figure:
    """One measured figure: its value, the raw limit measured beside it (if any), and its target.

    ``met`` is None when the figure has no target (it is shown for context only).
    """

    case: str
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    raw: float | None = None
    ratio: float | None = None


@dataclass
class CaseResult:
    """What one case produced: figures for the table, every other number in ``details``, or an error."""

    case: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        """No error and every target met."""
        return self.error is None and all(f.met is not False for f in self.figures)


def format_value(value: float | None, unit: str) -> str:
    """``12,345 rows/s``, ``87.2 MB``, ``0.412 s``, ``31.0 ms``; an em dash for None."""
    if value is None:
        return "—"
    if unit in ("rows/s", "files/s"):
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.1f} {unit}"


def _met(figure: Figure) -> str:
    return {True: "yes", False: "NO", None: "—"}[figure.met]


def table_rows(results: list[CaseResult]) -> list[tuple[str, ...]]:
    """The table's rows, as text: one per figure, and one ``FAILED`` row per failed case."""
    rows: list[tuple[str, ...]] = []
    for result in results:
        for figure in result.figures:
            ratio = "—" if figure.ratio is None else f"{figure.ratio:.3g}{TIMES}"
            raw = format_value(figure.raw, figure.unit)
            value = format_value(figure.value, figure.unit)
            rows.append((figure.case, figure.name, value, raw, ratio, figure.target or "—", _met(figure)))
        if result.error is not None:
            first_line = result.error.strip().splitlines()[0] if result.error.strip() else "error"
            rows.append((result.case, "FAILED", first_line[:100], "—", "—", "—", "NO"))
    return rows


def print_table(console: Console, results: list[CaseResult], title: str) -> None:
    """Print the figures as a Rich table."""
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("value", "raw limit", "ratio") else "left")
    for row in table_rows(results):
        style = "red" if row[-1] == "NO" else None
        table.add_row(*row, style=style)
    console.print(table)


def as_json(meta: dict[str, Any], results: list[CaseResult]) -> dict[str, Any]:
    """Every figure and detail of the run, with its metadata."""
    return {"meta": meta, "cases": {result.case: asdict(result) for result in results}}


def write_json(path: Path, meta: dict[str, Any], results: list[CaseResult]) -> None:
    """Write ``results.json`` (indented, UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(as_json(meta, results), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def _markdown_table(results: list[CaseResult]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table_rows(results)
    ]
    return lines


def markdown(meta: dict[str, Any], results: list[CaseResult]) -> str:
    """``RESULTS.md``: the table, the commit it was measured at, the command and the machine."""
    dirty = " (with uncommitted changes)" if meta["dirty"] else ""
    lines = [
        "# Benchmark results",
        "",
        f"Measured {meta['date']} at commit `{meta['commit']}`{dirty}, scale {meta['scale']}, on "
        f"{meta['nproc']} cores, Python {meta['python']}, SQLite CLI {meta['sqlite_cli']}.",
        "",
        f"Command: `{meta['command']}` (every figure and detail: `bench/results.json`; how to read "
        "them: `bench/README.md`).",
        "",
        *_markdown_table(results),
        "",
        f"All targets met: {'yes' if all(r.passed for r in results) else 'no'}.",
        "",
    ]
    return "\n".join(lines)

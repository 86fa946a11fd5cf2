"""What every case shares: the scale, the work folder, the seed, generated files and earlier runs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import datagen
from bench.workspace import Workspace

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SEED = 20_261_126


@dataclass
class BenchContext:
    """One benchmark run's settings and caches.

    ``rows(n)`` scales a row count of the full-size benchmark (at least 1). Generated files live in
    ``workdir/data`` and are generated once per run and reused by every case asking for the same data.
    ``memo`` lets a case reuse a measurement another case already made in this run (the 1M import).
    """

    scale: float
    workdir: Path
    postgres_url: str = DEFAULT_POSTGRES_URL
    keep: bool = False
    seed: int = SEED
    memo: dict[Any, Any] = field(default_factory=dict)

    def rows(self, full_size: int) -> int:
        """``full_size`` times the scale, rounded, at least 1."""
        return max(1, round(full_size * self.scale))

    @property
    def data(self) -> Path:
        folder = self.workdir / "data"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def generated(self, name: str, write: Callable[[Path], int]) -> Path:
        """``data/<name>``, written by ``write(path)`` the first time it is asked for in this run."""
        path = self.data / name
        if not path.exists():
            partial = path.with_name(f".{name}.partial")
            write(partial)
            partial.rename(path)
        return path

    def patients_file(self, rows: int, first: int = 0) -> Path:
        """An import_patients file of patients ``first .. first+rows-1`` (see ``datagen``)."""
        return self.generated(
            f"patients-{rows}-from-{first}.csv",
            lambda path: datagen.write_import_patients(path, rows, first, self.seed),
        )

    def workspace(self, name: str, database_url: str = "", **settings: str) -> Workspace:
        """A fresh workspace ``cases/<name>`` (an older one of that name is removed first)."""
        root = self.workdir / "cases" / name
        shutil.rmtree(root, ignore_errors=True)
        return Workspace(root, database_url, dict(settings))

    def discard(self, workspace: Workspace) -> None:
        """Remove a finished case's workspace (databases, outbox, archive) unless ``keep``."""
        if not self.keep:
            shutil.rmtree(workspace.root, ignore_errors=True)
